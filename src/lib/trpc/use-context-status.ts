"use client";

import { useState } from "react";
import { applyContextItem, type ContextState } from "../context-state";
import { trpc } from "./client";
import type { ContextFeedItem, ContextView } from "./types";
import { useLiveFeed } from "./use-live-feed";

/**
 * The tenant's context file status, live, with its content: the content is fetched again
 * whenever a new version completes, so the Approve banner appears without a reload.
 */
export function useContextStatus(initial?: { id: string; context: ContextView | null }) {
  const utils = trpc.useUtils();
  const [start] = useState<ContextState>(() => ({
    context: initial?.context ?? null,
    lastEventId: initial?.id ?? null,
  }));
  const feed = useLiveFeed<ContextFeedItem, ContextState>({
    initial: start,
    reduce: applyContextItem,
    fetchPage: (cursor) => utils.context.events.fetch(cursor ? { cursor } : {}, { staleTime: 0 }),
    onApplied: (_entry, before, after) => {
      if (after.context?.version !== before.context?.version || after.context?.status !== before.context?.status) {
        void utils.context.get.invalidate();
      }
    },
  });
  trpc.context.onStatusChanged.useSubscription(start.lastEventId ? { lastEventId: start.lastEventId } : {}, {
    onData: (data) => feed.apply({ id: data.id, item: data.data }),
    onError: feed.onError,
  });
  const content = trpc.context.get.useQuery(undefined, {
    initialData: initial?.context ?? undefined,
    staleTime: Infinity,
  });
  const live = feed.state.context;
  const fetched = live && content.data?.version === live.version ? content.data : null;
  // A live approval's event says "approved" only; who approved it and when come with the
  // file as `context.get` reads it again.
  const approval =
    live?.status === "approved" && fetched?.status === "approved" && !live.approvedBy
      ? { approvedBy: fetched.approvedBy, approvedAt: fetched.approvedAt }
      : {};
  const context = live ? { ...live, content: fetched?.content ?? null, ...approval } : null;
  return { context, connection: feed.connection };
}
