import { applyAgentItem, type AgentState } from "./agent-state.js";
import type { AgentEvent, AgentFeedItem, RunView } from "../types.js";

/** One run and every event of it the page has seen, for the run detail's timeline. */
export interface RunState extends AgentState {
  timeline: { id: string; event: AgentEvent }[];
}

export function initialRunState(run: RunView | null): RunState {
  // The page's run is the whole of this feed's scope.
  return { runs: run ? { [run.id]: run } : {}, lastEventId: null, fromSnapshot: run !== null, timeline: [] };
}

/** Applies an item to the run (see `applyAgentItem`) and appends events to the timeline. */
export function applyRunItem(state: RunState, entry: { id: string; item: AgentFeedItem }): RunState {
  const next = applyAgentItem(state, entry);
  if (entry.item.type === "snapshot" || entry.item.type === "resync") {
    // A resync keeps what the timeline already shows; the snapshot carries no history.
    return { ...next, timeline: state.timeline };
  }
  return { ...next, timeline: [...state.timeline, { id: entry.id, event: entry.item }] };
}
