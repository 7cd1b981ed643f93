"use client";

import { useState } from "react";
import type { ConnectionSnapshot } from "../connection.js";
import { applyAgentItem, emptyAgentState, latestRunByRole, type AgentState } from "../state/agent-state.js";
import type { AgentEvent, AgentFeedItem, RunView } from "../types.js";
import { usePulseClient } from "./provider.js";
import { usePulseFeed, usePulseSubscription, type FeedEntry } from "./use-pulse-feed.js";

export interface PulseAgentsOptions {
  /** Only this role's runs. */
  agentRole?: string;
  /** Server-rendered starting point: the snapshot and its id. */
  initial?: { id: string; runs: RunView[] };
  /** Called for every agent event applied (e.g. to notify when a run finishes). */
  onEvent?: (event: AgentEvent, before: AgentState, after: AgentState) => void;
}

export interface PulseAgents {
  /** Every run of the tenant the page has seen, by id, and the id of the last event applied. */
  state: AgentState;
  /** The latest run of each role. */
  byRole: Record<string, RunView>;
  connection: ConnectionSnapshot;
}

/**
 * The tenant's agent runs, live: a snapshot (or `initial`), then every event in order, over
 * the WebSocket or server-sent events, or, while neither connects, by polling `agent.events`.
 */
export function usePulseAgents(options: PulseAgentsOptions = {}): PulseAgents {
  const client = usePulseClient();
  const filter = options.agentRole ? { agentRole: options.agentRole } : {};
  const [initial] = useState<AgentState>(() =>
    options.initial
      ? applyAgentItem(emptyAgentState, {
          id: options.initial.id,
          item: { type: "snapshot", snapshot: { runs: options.initial.runs } },
        })
      : emptyAgentState,
  );
  const feed = usePulseFeed<AgentFeedItem, AgentState>({
    initial,
    reduce: applyAgentItem,
    fetchPage: (cursor, signal) =>
      client.trpc.agent.events.query({ ...filter, ...(cursor ? { cursor } : {}) }, { signal }),
    onApplied: (entry: FeedEntry<AgentFeedItem>, before, after) => {
      if (entry.item.type !== "snapshot" && entry.item.type !== "resync") options.onEvent?.(entry.item, before, after);
    },
  });
  usePulseSubscription(options.agentRole ?? "", () =>
    client.trpc.agent.onStatus.subscribe(
      { ...filter, ...(initial.lastEventId ? { lastEventId: initial.lastEventId } : {}) },
      { onData: (data) => feed.apply({ id: data.id, item: data.data }), onError: feed.onError },
    ),
  );
  return { state: feed.state, byRole: latestRunByRole(feed.state), connection: feed.connection };
}
