import type { ContextFeedItem, ContextView } from "../types.js";

export interface ContextState {
  context: ContextView | null;
  lastEventId: string | null;
}

/**
 * Applies a context feed item: snapshots and resyncs replace the state; a status change the
 * state already reflects (by `seq`) is skipped. Content travels separately (`context.get`).
 */
export function applyContextItem(state: ContextState, entry: { id: string; item: ContextFeedItem }): ContextState {
  const { id, item } = entry;
  if (item.type === "snapshot" || item.type === "resync") return { context: item.snapshot.context, lastEventId: id };
  const current = state.context;
  if (current && item.seq <= current.seq) return { ...state, lastEventId: id };
  const base: ContextView = current ?? {
    status: item.status,
    version: 0,
    seq: 0,
    content: null,
    approvedAt: null,
    approvedBy: null,
    updatedAt: item.at,
  };
  return {
    context: {
      ...base,
      status: item.status,
      version: item.version ?? base.version,
      seq: item.seq,
      updatedAt: item.at,
      ...(item.status === "approved" ? {} : { approvedAt: null, approvedBy: null }),
    },
    lastEventId: id,
  };
}
