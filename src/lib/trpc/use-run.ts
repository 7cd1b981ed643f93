"use client";

import { useState } from "react";
import { STREAM_ORIGIN } from "@/shared/stream-id";
import { applyRunItem, initialRunState, type RunState } from "../run-state";
import { trpc } from "./client";
import type { AgentFeedItem, RunView } from "./types";
import { useLiveFeed, type FeedPage } from "./use-live-feed";

/**
 * One run, live, with its timeline. The subscription starts from the stream's origin so the
 * timeline shows the run's whole history while the stream still holds it; the state itself
 * starts from the server-rendered run and skips events it already reflects.
 */
export function useRun(runId: string, initial: RunView | null) {
  const utils = trpc.useUtils();
  const feed = useRunFeed(initial, (cursor) =>
    utils.agent.events.fetch({ runId, ...(cursor ? { cursor } : {}) }, { staleTime: 0 }),
  );
  trpc.agent.onStatus.useSubscription(
    { runId, lastEventId: STREAM_ORIGIN },
    { onData: (data) => feed.apply({ id: data.id, item: data.data }), onError: feed.onError },
  );
  return { run: feed.state.runs[runId] ?? null, timeline: feed.state.timeline, connection: feed.connection };
}

/** The run a share link shows, as `useRun` does, through the link's own procedures. */
export function useSharedRun(initial: RunView) {
  const utils = trpc.useUtils();
  const feed = useRunFeed(initial, (cursor) => utils.share.events.fetch(cursor ? { cursor } : {}, { staleTime: 0 }));
  trpc.share.onRun.useSubscription(
    { lastEventId: STREAM_ORIGIN },
    { onData: (data) => feed.apply({ id: data.id, item: data.data }), onError: feed.onError },
  );
  return { run: feed.state.runs[initial.id] ?? null, timeline: feed.state.timeline, connection: feed.connection };
}

function useRunFeed(
  initial: RunView | null,
  fetchPage: (cursor: string | undefined) => Promise<FeedPage<AgentFeedItem>>,
) {
  const [start] = useState<RunState>(() => initialRunState(initial));
  return useLiveFeed<AgentFeedItem, RunState>({
    initial: start,
    startCursor: STREAM_ORIGIN,
    reduce: applyRunItem,
    fetchPage,
  });
}
