"use client";

import { useState } from "react";
import { applyAgentItem, emptyAgentState, latestRunByRole, type AgentState } from "../agent-state";
import { trpc } from "./client";
import type { AgentEvent, AgentFeedItem, RunView } from "./types";
import { useLiveFeed, type FeedEntry } from "./use-live-feed";

export interface AgentStatusOptions {
  agentRole?: string;
  /** Server-rendered starting point: the snapshot and its id. */
  initial?: { id: string; runs: RunView[] };
  /** Called for every agent event applied (e.g. to notify when a run finishes). */
  onEvent?: (event: AgentEvent, before: AgentState, after: AgentState) => void;
}

/**
 * The tenant's agent runs, live: the server-rendered snapshot (or a fresh one), then every
 * event in order, over the WebSocket or, while it is down, by polling `agent.events`.
 */
export function useAgentStatus(options: AgentStatusOptions = {}) {
  const utils = trpc.useUtils();
  const filter = options.agentRole ? { agentRole: options.agentRole } : {};
  const [initial] = useState<AgentState>(() =>
    options.initial
      ? applyAgentItem(emptyAgentState, {
          id: options.initial.id,
          item: { type: "snapshot", snapshot: { runs: options.initial.runs } },
        })
      : emptyAgentState,
  );
  const feed = useLiveFeed<AgentFeedItem, AgentState>({
    initial,
    reduce: applyAgentItem,
    fetchPage: (cursor) => utils.agent.events.fetch({ ...filter, ...(cursor ? { cursor } : {}) }, { staleTime: 0 }),
    onApplied: (entry: FeedEntry<AgentFeedItem>, before, after) => {
      if (entry.item.type !== "snapshot" && entry.item.type !== "resync") options.onEvent?.(entry.item, before, after);
    },
  });
  trpc.agent.onStatus.useSubscription(
    { ...filter, ...(initial.lastEventId ? { lastEventId: initial.lastEventId } : {}) },
    { onData: (data) => feed.apply({ id: data.id, item: data.data }), onError: feed.onError },
  );
  return { state: feed.state, byRole: latestRunByRole(feed.state), connection: feed.connection };
}
