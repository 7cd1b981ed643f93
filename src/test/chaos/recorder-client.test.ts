import { describe, expect, it } from "vitest";
import type { StreamEntry } from "../../server/events/event-stream";
import type { PulseEvent } from "../../server/events/schema";
import { RecorderClient } from "./recorder-client";
import { auditAgainstStream } from "./stream-audit";

/**
 * The chaos suite's own checks must fail when delivery breaks: a recorder fed a stream with
 * an event missing, repeated, out of order, or a change counter that jumps reports exactly
 * that, and a resync excuses only what came before it.
 */

const run = { tenantId: "t1", runId: "r1", jobId: "r1", queue: "q", agentRole: "chaos-feed-a", attempt: 1 };
const at = "2026-01-01T00:00:00.000Z";
/** The run as a snapshot shows it (the recorder reads its id, counter and attempt). */
const runView = { id: run.runId, tenantId: run.tenantId, agentRole: run.agentRole, status: "active", steps: [] };

function log(seq: number): PulseEvent {
  return { ...run, type: "agent:log", level: "info", message: `line ${seq}`, seq, at } as PulseEvent;
}

/** A stream of `count` log events of one run, ids 1-0, 2-0, … and seq 1, 2, … */
function stream(count: number): StreamEntry[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${i + 1}-0`, event: log(i + 1) }));
}

/** A recorder whose snapshot holds the run before its first counted event. */
function recorder(): RecorderClient {
  const r = new RecorderClient({ wsUrl: "ws://unused", token: "unused", feed: { kind: "agent" } });
  r.receive("0-0", { type: "snapshot", snapshot: { runs: [{ ...runView, seq: 0, attempt: 1 }] } } as never);
  return r;
}

describe("the chaos recorder", () => {
  it("finds nothing wrong when every entry arrives once, in order", () => {
    const entries = stream(5);
    const r = recorder();
    for (const e of entries) r.receive(e.id, e.event);
    expect(auditAgainstStream(r, entries)).toEqual({ lost: 0, extra: 0, unverifiable: 0, mismatched: 0 });
    expect(r.tally).toMatchObject({ duplicated: 0, reordered: 0, seqGaps: 0 });
  });

  it("counts a skipped entry as lost, by the stream and by the change counter", () => {
    const entries = stream(5);
    const r = recorder();
    for (const e of entries) if (e.id !== "3-0") r.receive(e.id, e.event);
    expect(auditAgainstStream(r, entries).lost).toBe(1);
    expect(r.tally.seqGaps).toBe(1);
  });

  it("counts a repeated entry as duplicated and an older one as reordered", () => {
    const entries = stream(5);
    const r = recorder();
    r.receive("1-0", entries[0]!.event);
    r.receive("3-0", entries[2]!.event);
    r.receive("3-0", entries[2]!.event);
    r.receive("2-0", entries[1]!.event);
    expect(r.tally).toMatchObject({ duplicated: 1, reordered: 1 });
  });

  it("excuses what a resync replaced, and checks everything after it", () => {
    const entries = stream(8);
    const r = recorder();
    r.receive("1-0", entries[0]!.event);
    r.receive("2-0", entries[1]!.event);
    // 3-0 … 5-0 never arrive: the client was away; the resync at 5-0 says so.
    r.receive("5-0", { type: "resync", snapshot: { runs: [{ ...runView, seq: 5, attempt: 1 }] } } as never);
    r.receive("6-0", entries[5]!.event);
    r.receive("8-0", entries[7]!.event);
    const audit = auditAgainstStream(r, entries);
    expect(audit.lost).toBe(1);
    expect(r.tally).toMatchObject({ resyncs: 1, seqGaps: 1 });
  });

  it("follows no counter for a run outside the snapshot, whose deliveries the stream audit still checks", () => {
    // The run ended and was superseded before the snapshot was read: its late events arrive.
    const entries = stream(5);
    const r = new RecorderClient({ wsUrl: "ws://unused", token: "unused", feed: { kind: "agent" } });
    r.receive("0-0", { type: "snapshot", snapshot: { runs: [] } } as never);
    for (const e of entries.slice(3)) r.receive(e.id, e.event);
    expect(r.tally).toMatchObject({ outOfScope: 2, seqGaps: 0 });
    expect(r.agentState.runs).toEqual({});
    expect(auditAgainstStream(r, entries).lost).toBe(3);
  });

  it("takes each run's attempt from a resync: an older attempt's event after it is a mix", () => {
    const r = recorder();
    r.receive("1-0", { ...log(1), attempt: 1 } as PulseEvent);
    // The client was away while the run failed and was retried: the resync shows attempt 2.
    r.receive("5-0", { type: "resync", snapshot: { runs: [{ ...runView, seq: 4, attempt: 2 }] } } as never);
    r.receive("6-0", { ...log(5), attempt: 1 } as PulseEvent);
    expect(r.tally.attemptMixes).toBe(1);
  });

  it("takes each run's counter from a resync: an event the resync already holds is no gap, one past it is", () => {
    const r = recorder();
    r.receive("1-0", log(1));
    r.receive("5-0", { type: "resync", snapshot: { runs: [{ ...runView, seq: 4, attempt: 1 }] } } as never);
    r.receive("6-0", log(4));
    r.receive("7-0", log(5));
    expect(r.tally.seqGaps).toBe(0);
    r.receive("8-0", log(7));
    expect(r.tally.seqGaps).toBe(1);
  });
});
