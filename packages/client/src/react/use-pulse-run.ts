"use client";

import { useState } from "react";
import { STREAM_ORIGIN } from "../stream-id.js";
import { applyRunItem, initialRunState, type RunState } from "../state/run-state.js";
import type { AgentEvent, AgentFeedItem, RunView } from "../types.js";
import type { ConnectionSnapshot } from "../connection.js";
import { usePulseClient } from "./provider.js";
import { usePulseFeed, usePulseSubscription, type FeedPage } from "./use-pulse-feed.js";

export interface PulseRunOptions {
  /** The run as your server already read it (server rendering): shown before the first event. */
  initial?: RunView | null;
}

export interface PulseRun {
  /** The run now: status, phase, progress, steps… (null until Pulse has sent it). */
  run: RunView | null;
  /** Every event of the run this page has seen, in order. */
  timeline: { id: string; event: AgentEvent }[];
  connection: ConnectionSnapshot;
}

/**
 * One run, live, with its timeline. The subscription starts from the stream's origin so the
 * timeline shows the run's whole history while the stream still holds it; the state itself
 * starts from `initial` and skips events it already reflects. While the client polls, the
 * same events come from `agent.events`.
 */
export function usePulseRun(runId: string, options: PulseRunOptions = {}): PulseRun {
  const client = usePulseClient();
  const feed = usePulseRunFeed(options.initial ?? null, (cursor, signal) =>
    client.trpc.agent.events.query({ runId, ...(cursor ? { cursor } : {}) }, { signal }),
  );
  usePulseSubscription(`${runId}`, () =>
    client.trpc.agent.onStatus.subscribe(
      { runId, lastEventId: STREAM_ORIGIN },
      { onData: (data) => feed.apply({ id: data.id, item: data.data }), onError: feed.onError },
    ),
  );
  return { run: feed.state.runs[runId] ?? null, timeline: feed.state.timeline, connection: feed.connection };
}

/** The feed behind `usePulseRun`, for a run read through other procedures (Pulse's share links). */
export function usePulseRunFeed(
  initial: RunView | null,
  fetchPage: (cursor: string | undefined, signal: AbortSignal) => Promise<FeedPage<AgentFeedItem>>,
) {
  const [start] = useState<RunState>(() => initialRunState(initial));
  return usePulseFeed<AgentFeedItem, RunState>({
    initial: start,
    startCursor: STREAM_ORIGIN,
    reduce: applyRunItem,
    fetchPage,
  });
}
