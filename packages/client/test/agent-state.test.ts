import { describe, expect, it } from "vitest";
import { applyAgentItem, emptyAgentState, latestRunByRole, type AgentState } from "../src/state/agent-state.js";
import type { AgentFeedItem, RunView } from "../src/types.js";

const base = {
  tenantId: "t",
  runId: "r1",
  jobId: "r1",
  queue: "client-researcher",
  agentRole: "client-researcher",
  attempt: 1,
};
const at = "2026-01-01T00:00:00.000Z";

function run(overrides: Partial<RunView> = {}): RunView {
  return {
    id: "r1",
    tenantId: "t",
    agentRole: "client-researcher",
    queue: "client-researcher",
    jobId: "r1",
    chainId: null,
    chainName: null,
    status: "active",
    phase: "running",
    progress: 40,
    message: "reading",
    error: null,
    attempt: 1,
    willRetry: false,
    nextAgent: null,
    seq: 5,
    queuedAt: at,
    startedAt: at,
    completedAt: null,
    failedAt: null,
    cancelledAt: null,
    updatedAt: at,
    steps: [],
    ...overrides,
  };
}

/** Run r1's step s1 ("Fetch") started: the event counted `seq` in its run. */
const step = (seq: number): AgentFeedItem => ({
  type: "agent:step",
  ...base,
  stepId: "s1",
  name: "Fetch",
  status: "started",
  seq,
  at,
});

const apply = (state: AgentState, id: string, item: AgentFeedItem) => applyAgentItem(state, { id, item });

describe("applyAgentItem", () => {
  it("replaces the state with a snapshot or a resync", () => {
    const withRun = apply(emptyAgentState, "1-0", { type: "snapshot", snapshot: { runs: [run()] } });
    expect(Object.keys(withRun.runs)).toEqual(["r1"]);
    const resynced = apply(withRun, "9-0", { type: "resync", snapshot: { runs: [run({ id: "r2", jobId: "r2" })] } });
    expect(Object.keys(resynced.runs)).toEqual(["r2"]);
    expect(resynced.lastEventId).toBe("9-0");
  });

  it("skips a counted event the snapshot already reflects, but moves the cursor", () => {
    const state = apply(emptyAgentState, "1-0", { type: "snapshot", snapshot: { runs: [run({ seq: 5, steps: [] })] } });
    const stale = apply(state, "2-0", step(4));
    expect(stale.runs.r1?.steps).toHaveLength(0);
    expect(stale.lastEventId).toBe("2-0");
    const fresh = apply(stale, "3-0", step(6));
    expect(fresh.runs.r1).toMatchObject({ seq: 6, steps: [{ id: "s1", status: "started" }] });
  });

  it("applies progress, latest-wins, only to the attempt that is running, and keeps the run's counter", () => {
    const state = apply(emptyAgentState, "1-0", {
      type: "snapshot",
      snapshot: { runs: [run({ seq: 5, progress: 40, attempt: 2 })] },
    });
    const fresh = apply(state, "2-0", {
      type: "agent:progress",
      ...base,
      attempt: 2,
      progress: 60,
      phase: "running",
      message: "new",
      seq: 0,
      at,
    });
    expect(fresh.runs.r1).toMatchObject({ progress: 60, message: "new", seq: 5 });
    const oldAttempt = apply(fresh, "3-0", {
      type: "agent:progress",
      ...base,
      attempt: 1,
      progress: 90,
      phase: "running",
      message: "old",
      seq: 0,
      at,
    });
    expect(oldAttempt.runs.r1).toMatchObject({ progress: 60, message: "new" });
    expect(oldAttempt.lastEventId).toBe("3-0");
    const ended = apply(fresh, "4-0", { type: "agent:completed", ...base, attempt: 2, completedAt: at, seq: 6, at });
    const late = apply(ended, "5-0", {
      type: "agent:progress",
      ...base,
      attempt: 2,
      progress: 70,
      phase: "running",
      message: "late",
      seq: 0,
      at,
    });
    expect(late.runs.r1).toMatchObject({ status: "completed", progress: 100 });
  });

  it("after a snapshot, takes a run its queueing brings in and skips the events of runs outside the snapshot", () => {
    // r1 was live when the snapshot's id was taken, then completed and was superseded by r2
    // before the snapshot was read: the snapshot holds r2 only, and r1's completion follows.
    const snapshot = apply(emptyAgentState, "1-0", {
      type: "snapshot",
      snapshot: { runs: [run({ id: "r2", jobId: "r2", status: "queued", seq: 1 })] },
    });
    const late = apply(snapshot, "2-0", { type: "agent:completed", ...base, completedAt: at, seq: 9, at });
    expect(Object.keys(late.runs)).toEqual(["r2"]);
    expect(late.lastEventId).toBe("2-0");
    const queued = { type: "agent:queued", ...base, runId: "r3", jobId: "r3", queuedAt: at, seq: 1, at } as const;
    const next = apply(late, "3-0", queued);
    expect(next.runs.r3).toMatchObject({ status: "queued", seq: 1 });
    // Resumed from a cursor alone, nothing tells which runs the feed's scope holds: each is taken as it comes.
    expect(apply(emptyAgentState, "2-0", step(3)).runs.r1).toMatchObject({ seq: 3, steps: [{ id: "s1" }] });
  });

  it("follows a run from queued through a retried failure to completion", () => {
    let state = apply(emptyAgentState, "1-0", { type: "agent:queued", ...base, queuedAt: at, seq: 1, at });
    expect(state.runs.r1?.status).toBe("queued");
    state = apply(state, "2-0", { type: "agent:active", ...base, startedAt: at, seq: 2, at });
    state = apply(state, "3-0", step(3));
    state = apply(state, "4-0", {
      type: "agent:failed",
      ...base,
      error: "timeout",
      failedAt: at,
      willRetry: true,
      seq: 4,
      at,
    });
    expect(state.runs.r1).toMatchObject({ status: "queued", willRetry: true, error: "timeout" });
    state = apply(state, "5-0", { type: "agent:active", ...base, attempt: 2, startedAt: at, seq: 5, at });
    expect(state.runs.r1).toMatchObject({ status: "active", attempt: 2, willRetry: false, progress: 0 });
    state = apply(state, "6-0", {
      type: "agent:step",
      ...base,
      attempt: 2,
      stepId: "s1",
      name: "Fetch",
      status: "completed",
      seq: 6,
      at,
    });
    expect(state.runs.r1?.steps).toHaveLength(1);
    expect(state.runs.r1?.steps[0]?.status).toBe("completed");
    state = apply(state, "7-0", {
      type: "agent:completed",
      ...base,
      attempt: 2,
      completedAt: at,
      nextAgent: "competitor-researcher",
      seq: 7,
      at,
    });
    expect(state.runs.r1).toMatchObject({ status: "completed", progress: 100, nextAgent: "competitor-researcher" });
  });

  it("starts a new attempt's output afresh, as the database does", () => {
    let state = apply(emptyAgentState, "1-0", {
      type: "snapshot",
      snapshot: { runs: [run({ output: "first draft" })] },
    });
    state = apply(state, "2-0", { type: "agent:active", ...base, attempt: 2, startedAt: at, seq: 6, at });
    expect(state.runs.r1?.output).toBe("");
    state = apply(state, "3-0", { type: "agent:output", ...base, attempt: 2, chunk: "second", seq: 7, at });
    expect(state.runs.r1?.output).toBe("second");
    // A tenant-wide view holds no output, and a start gives it none.
    const wide = apply(emptyAgentState, "1-0", { type: "snapshot", snapshot: { runs: [run()] } });
    expect(
      apply(wide, "2-0", { type: "agent:active", ...base, attempt: 2, startedAt: at, seq: 6, at }).runs.r1?.output,
    ).toBeUndefined();
  });

  it("appends streamed output only to runs whose output it holds", () => {
    let state = apply(emptyAgentState, "1-0", { type: "snapshot", snapshot: { runs: [run({ output: "Hello" })] } });
    state = apply(state, "2-0", { type: "agent:output", ...base, chunk: ", world", seq: 6, at });
    expect(state.runs.r1?.output).toBe("Hello, world");
  });
});

describe("latestRunByRole", () => {
  it("keeps the newest run of each role", () => {
    const state: AgentState = {
      lastEventId: null,
      fromSnapshot: true,
      runs: {
        a: run({ id: "a", queuedAt: "2026-01-01T00:00:00.000Z" }),
        b: run({ id: "b", queuedAt: "2026-01-02T00:00:00.000Z" }),
        c: run({ id: "c", agentRole: "competitor-researcher" }),
      },
    };
    const latest = latestRunByRole(state);
    expect(latest["client-researcher"]?.id).toBe("b");
    expect(latest["competitor-researcher"]?.id).toBe("c");
  });
});
