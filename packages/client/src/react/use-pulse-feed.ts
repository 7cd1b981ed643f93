"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import { startPolling, type FeedEntry, type FeedPage } from "../poller.js";
import { refusalWaitMs } from "../refusals.js";
import { compareStreamIds } from "../stream-id.js";
import { usePulseClient, usePulseConnection } from "./provider.js";

export type { FeedEntry, FeedPage } from "../poller.js";

const POLL_INTERVAL_MS = 2_000;

/** Detail of the `pulse:applied` window event, dispatched for every item a live view applies. */
export interface AppliedDetail {
  id: string;
  type: string;
}

export interface PulseFeedOptions<TItem, TState> {
  initial: TState;
  /** Where polling starts when nothing was applied yet (default: a fresh snapshot). */
  startCursor?: string;
  reduce: (state: TState, entry: FeedEntry<TItem>) => TState;
  /** Reads the page after `cursor`; pass `signal` to the request (it aborts a poll given up on). */
  fetchPage: (cursor: string | undefined, signal: AbortSignal) => Promise<FeedPage<TItem>>;
  onApplied?: (entry: FeedEntry<TItem>, before: TState, after: TState) => void;
}

/**
 * The state behind one live view, fed by a subscription and, while the client polls, by
 * polling the query twin from the same cursor. Items are applied in id order exactly once:
 * whichever path delivers an id first wins, and the other path's copy is skipped, so
 * switching between them loses and repeats nothing. Snapshots and resyncs replace the state.
 */
export function usePulseFeed<TItem extends { type: string }, TState extends { lastEventId: string | null }>(
  options: PulseFeedOptions<TItem, TState>,
) {
  const { monitor, onUnauthorized } = usePulseClient();
  const connection = usePulseConnection();
  const [state, setState] = useState(options.initial);
  const stateRef = useRef(state);
  const pollCursor = useRef<string | null>(options.initial.lastEventId ?? options.startCursor ?? null);
  const optionsRef = useRef(options);
  // Kept current after each render, before the effects below run (events only arrive after them).
  useEffect(() => {
    optionsRef.current = options;
  });

  const apply = useCallback(
    (entry: FeedEntry<TItem>) => {
      const before = stateRef.current;
      const replaces = entry.item.type === "snapshot" || entry.item.type === "resync";
      if (!replaces && before.lastEventId !== null && compareStreamIds(entry.id, before.lastEventId) <= 0) return;
      const after = optionsRef.current.reduce(before, entry);
      stateRef.current = after;
      if (pollCursor.current === null || compareStreamIds(entry.id, pollCursor.current) > 0)
        pollCursor.current = entry.id;
      setState(after);
      monitor.itemReceived();
      // Lets other scripts on the page (analytics, browser tests) follow what was applied.
      window.dispatchEvent(
        new CustomEvent<AppliedDetail>("pulse:applied", { detail: { id: entry.id, type: entry.item.type } }),
      );
      optionsRef.current.onApplied?.(entry, before, after);
    },
    [monitor],
  );

  useEffect(() => monitor.retain(), [monitor]);

  const polling = connection.status === "polling" || connection.status === "unavailable";
  useEffect(() => {
    if (!polling) return;
    return startPolling<TItem>({
      fetchPage: (cursor, signal) => optionsRef.current.fetchPage(cursor, signal),
      cursor: () => pollCursor.current,
      onPage: (page) => {
        for (const entry of page.items) apply(entry);
        // The page's cursor also passes events the filter left out, even when it is empty.
        if (pollCursor.current === null || compareStreamIds(page.cursor, pollCursor.current) > 0)
          pollCursor.current = page.cursor;
        monitor.pollSucceeded();
      },
      onError: (error) => {
        if ((error as { data?: { code?: string } }).data?.code === "UNAUTHORIZED") {
          onUnauthorized();
          return "stop";
        }
        // Refused for a rate (the tenant's calls, a share link's views): the server answered,
        // so it is no failed poll (which would end in "Unavailable"); ask again when it says.
        const refusedFor = refusalWaitMs(error);
        if (refusedFor !== null) return { retryInMs: Math.max(refusedFor, POLL_INTERVAL_MS) };
        monitor.pollFailed();
        return "retry";
      },
      intervalMs: POLL_INTERVAL_MS,
    });
  }, [polling, connection.refreshes, apply, monitor, onUnauthorized]);

  /** For the subscription's onError: ended credentials (a revoked or expired token) go to `onUnauthorized`. */
  const onError = useCallback(
    (error: { data?: { code?: string } | null | undefined }) => {
      if (error.data?.code === "UNAUTHORIZED") onUnauthorized();
    },
    [onUnauthorized],
  );

  return { state, apply, connection, onError };
}

/**
 * Keeps one subscription open while the component is mounted (and `key` stays the same):
 * `subscribe` opens it, e.g. `client.trpc.agent.onStatus.subscribe(input, handlers)`.
 */
export function usePulseSubscription(key: string, subscribe: () => { unsubscribe(): void }): void {
  const subscribeRef = useRef(subscribe);
  useEffect(() => {
    subscribeRef.current = subscribe;
  });
  useEffect(() => {
    const subscription = subscribeRef.current();
    return () => subscription.unsubscribe();
  }, [key]);
}
