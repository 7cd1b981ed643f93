"use client";

import { useEffect, useRef, useState } from "react";
import type { ConnectionSnapshot } from "../connection.js";
import { applyContextItem, type ContextState } from "../state/context-state.js";
import type { ContextFeedItem, ContextView } from "../types.js";
import { usePulseClient } from "./provider.js";
import { usePulseFeed, usePulseSubscription } from "./use-pulse-feed.js";

export interface PulseContextOptions {
  /** Server-rendered starting point: the context file and the id of the snapshot it came from. */
  initial?: { id: string; context: ContextView | null };
}

export interface PulseContext {
  /** The tenant's context file: status, version, and its content once read (null: none yet). */
  context: ContextView | null;
  connection: ConnectionSnapshot;
}

/**
 * The tenant's context file status, live, with its content: the content is read again
 * whenever a new version completes or its status changes, so an Approve banner appears
 * without a reload.
 */
export function usePulseContext(options: PulseContextOptions = {}): PulseContext {
  const client = usePulseClient();
  const { initial } = options;
  const [start] = useState<ContextState>(() => ({
    context: initial?.context ?? null,
    lastEventId: initial?.id ?? null,
  }));
  const feed = usePulseFeed<ContextFeedItem, ContextState>({
    initial: start,
    reduce: applyContextItem,
    fetchPage: (cursor, signal) => client.trpc.context.events.query(cursor ? { cursor } : {}, { signal }),
  });
  usePulseSubscription("", () =>
    client.trpc.context.onStatusChanged.subscribe(start.lastEventId ? { lastEventId: start.lastEventId } : {}, {
      onData: (data) => feed.apply({ id: data.id, item: data.data }),
      onError: feed.onError,
    }),
  );
  const live = feed.state.context;
  const fetched = useContextContent(live, initial?.context ?? null);
  const matching = live && fetched?.version === live.version ? fetched : null;
  // A live approval's event says "approved" only; who approved it and when come with the
  // file as `context.get` reads it again.
  const approval =
    live?.status === "approved" && matching?.status === "approved" && !live.approvedBy
      ? { approvedBy: matching.approvedBy, approvedAt: matching.approvedAt }
      : {};
  const context = live ? { ...live, content: matching?.content ?? null, ...approval } : null;
  return { context, connection: feed.connection };
}

/** The file as `context.get` last read it, read again when the live version or status moves past it. */
function useContextContent(live: ContextView | null, initial: ContextView | null): ContextView | null {
  const client = usePulseClient();
  const [fetched, setFetched] = useState<ContextView | null>(initial);
  const fetchedRef = useRef(fetched);
  const wanted = live ? `${live.version}:${live.status}` : null;
  useEffect(() => {
    const current = fetchedRef.current;
    if (wanted === null || (current && `${current.version}:${current.status}` === wanted)) return;
    let stale = false;
    client.trpc.context.get.query().then(
      (file) => {
        if (stale) return;
        fetchedRef.current = file;
        setFetched(file);
      },
      // A failed read is retried by the next change; the status itself is already live.
      () => {},
    );
    return () => {
      stale = true;
    };
  }, [client, wanted]);
  return fetched;
}
