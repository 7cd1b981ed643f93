import type { AgentFeedItem, RunView } from "../types.js";

/** What a dashboard knows about a tenant's runs, built from a snapshot and the events after it. */
export interface AgentState {
  runs: Record<string, RunView>;
  /** The id of the last item applied: the cursor to resume from. */
  lastEventId: string | null;
  /**
   * True once a snapshot or resync was applied: the state then holds every run of the feed's
   * scope (queued and active runs, and each role's latest), and only `agent:queued` brings in
   * a run it lacks. An event of any other run belongs to one outside that scope, such as a run
   * that ended and was superseded by its role's next run before the snapshot was read while
   * its last events were still on their way: it is skipped, not rebuilt from one event.
   * False for a state resumed from a cursor alone, which takes every run as it comes.
   */
  fromSnapshot: boolean;
}

export const emptyAgentState: AgentState = { runs: {}, lastEventId: null, fromSnapshot: false };

type AgentEvent = Exclude<AgentFeedItem, { type: "snapshot" } | { type: "resync" }>;

function newRun(event: AgentEvent): RunView {
  return {
    id: event.runId,
    tenantId: event.tenantId,
    agentRole: event.agentRole,
    queue: event.queue,
    jobId: event.jobId,
    chainId: event.type === "agent:queued" ? (event.chainId ?? null) : null,
    chainName: event.type === "agent:queued" ? (event.chainName ?? null) : null,
    status: "queued",
    phase: null,
    progress: 0,
    message: null,
    error: null,
    attempt: event.attempt,
    willRetry: false,
    nextAgent: null,
    seq: 0,
    queuedAt: event.type === "agent:queued" ? event.queuedAt : event.at,
    startedAt: null,
    completedAt: null,
    failedAt: null,
    cancelledAt: null,
    updatedAt: event.at,
    steps: [],
  };
}

function applyEvent(run: RunView, event: AgentEvent): RunView {
  const next: RunView = { ...run, seq: event.seq, updatedAt: event.at };
  switch (event.type) {
    case "agent:queued":
      return { ...next, status: "queued", queuedAt: event.queuedAt };
    case "agent:active":
      // As in the database: output is the attempt's, so a retry's starts afresh.
      return {
        ...next,
        status: "active",
        phase: "starting",
        attempt: event.attempt,
        progress: 0,
        message: null,
        willRetry: false,
        startedAt: event.startedAt,
        ...(run.output === undefined ? {} : { output: "", outputStart: 0, outputDropped: 0 }),
      };
    case "agent:progress":
      // Progress is not counted: the run keeps the counter of its last counted event.
      return {
        ...next,
        seq: run.seq,
        progress: Math.round(event.progress),
        phase: event.phase,
        message: event.message,
      };
    case "agent:step": {
      const finished = event.status === "started" ? null : event.at;
      const exists = run.steps.some((s) => s.id === event.stepId);
      const steps = exists
        ? run.steps.map((s) =>
            s.id === event.stepId
              ? { ...s, status: event.status, finishedAt: finished, error: event.error ?? null }
              : s,
          )
        : [
            ...run.steps,
            {
              id: event.stepId,
              name: event.name,
              status: event.status,
              attempt: event.attempt,
              startedAt: event.at,
              finishedAt: finished,
              error: event.error ?? null,
            },
          ];
      return { ...next, steps };
    }
    case "agent:output":
      return run.output === undefined ? next : { ...next, output: run.output + event.chunk };
    case "agent:log":
      return next;
    case "agent:completed":
      return {
        ...next,
        status: "completed",
        phase: "completing",
        progress: 100,
        completedAt: event.completedAt,
        nextAgent: event.nextAgent ?? null,
        error: null,
      };
    case "agent:failed":
      return {
        ...next,
        status: event.willRetry ? "queued" : "failed",
        willRetry: event.willRetry,
        error: event.error,
        failedAt: event.failedAt,
      };
    case "agent:cancelled":
      return { ...next, status: "cancelled", willRetry: false, cancelledAt: event.cancelledAt };
  }
}

/**
 * Applies one subscription or polling item. Snapshots and resyncs replace the state; an
 * event whose `seq` the run already reflects (because the snapshot was read after it) is
 * skipped, so nothing is applied twice, and so is an event of a run outside the snapshot's
 * scope (see `AgentState.fromSnapshot`). Progress is latest-wins and uncounted: it applies
 * only to the attempt that is running, so a retried run never shows its old attempt's.
 */
export function applyAgentItem(state: AgentState, entry: { id: string; item: AgentFeedItem }): AgentState {
  const { id, item } = entry;
  if (item.type === "snapshot" || item.type === "resync") {
    return { runs: Object.fromEntries(item.snapshot.runs.map((r) => [r.id, r])), lastEventId: id, fromSnapshot: true };
  }
  const held = state.runs[item.runId];
  if (!held && state.fromSnapshot && item.type !== "agent:queued") return { ...state, lastEventId: id };
  const current = held ?? newRun(item);
  const stale =
    item.type === "agent:progress"
      ? current.status !== "active" || current.attempt !== item.attempt
      : item.seq <= current.seq;
  if (stale) return { ...state, lastEventId: id };
  return { ...state, runs: { ...state.runs, [item.runId]: applyEvent(current, item) }, lastEventId: id };
}

/** The newest run of each role, for one panel per agent. */
export function latestRunByRole(state: AgentState): Record<string, RunView> {
  const latest: Record<string, RunView> = {};
  for (const run of Object.values(state.runs)) {
    const seen = latest[run.agentRole];
    if (!seen || run.queuedAt > seen.queuedAt) latest[run.agentRole] = run;
  }
  return latest;
}
