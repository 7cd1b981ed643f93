"use client";

import { STREAM_ORIGIN } from "@pulse/client";
import { usePulseClient, usePulseRunFeed, usePulseSubscription } from "@pulse/client/react";
import type { RunView } from "./types";

/** The run a share link shows, as `usePulseRun` does, through the link's own procedures. */
export function useSharedRun(initial: RunView) {
  const client = usePulseClient();
  const feed = usePulseRunFeed(initial, (cursor, signal) =>
    client.trpc.share.events.query(cursor ? { cursor } : {}, { signal }),
  );
  usePulseSubscription("share", () =>
    client.trpc.share.onRun.subscribe(
      { lastEventId: STREAM_ORIGIN },
      { onData: (data) => feed.apply({ id: data.id, item: data.data }), onError: feed.onError },
    ),
  );
  return { run: feed.state.runs[initial.id] ?? null, timeline: feed.state.timeline, connection: feed.connection };
}
