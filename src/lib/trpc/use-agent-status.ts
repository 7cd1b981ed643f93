"use client";

import { useCallback, useReducer } from "react";
import { applyAgentItem, emptyAgentState, latestRunByRole, type AgentState } from "../agent-state";
import { trpc } from "./client";
import type { AgentFeedEntry } from "./types";

export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline";

/**
 * The tenant's agent runs, live: a snapshot first, then every event, applied in order.
 * wsLink resends the last event id on reconnect, so a dropped socket resumes without gaps.
 */
export function useAgentStatus(filter: { runId?: string; agentRole?: string } = {}) {
  const [state, dispatch] = useReducer(
    (current: AgentState, entry: { id: string; data: AgentFeedEntry["item"] }) => applyAgentItem(current, { id: entry.id, item: entry.data }),
    emptyAgentState,
  );
  const onData = useCallback((entry: { id: string; data: AgentFeedEntry["item"] }) => dispatch(entry), []);
  const subscription = trpc.agent.onStatus.useSubscription(filter, { onData });
  const connection: ConnectionState =
    subscription.status === "pending" ? "live" : subscription.status === "connecting" ? (state.lastEventId ? "reconnecting" : "connecting") : subscription.status === "error" ? "offline" : "connecting";
  return { state, byRole: latestRunByRole(state), connection, error: subscription.error };
}
