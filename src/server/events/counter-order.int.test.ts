import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { eventually, followedActiveRun, startTestPulse, type TestPulse } from "../../test/harness";
import { attemptFields } from "../agents/attempt-fields";
import { STREAM_ORIGIN } from "./schema";
import { TenantEventStream, TenantStreamKeys, type AppendCounter } from "./event-stream";

/**
 * A run's counted events are numbered in the database (`seq`) and then appended to the
 * tenant's stream, one process at a time per event. Two processes publishing one run (a lost
 * attempt's report and the next attempt, a cancel and a step) can be counted in one order and
 * appended in the other; a process can die between counting and appending. Subscribers must
 * then resync from the database, never see the run's counter skip or go back.
 */

const RETENTION = { maxAgeMs: 60_000, minEvents: 100, maxEvents: 1_000 };

describe("the append script's counter check", () => {
  let redis: Redis;
  let stream: TenantEventStream;
  const tenant = () => `counter-${randomUUID()}`;
  const append = (tenantId: string, runId: string, seq: number, gate?: Parameters<TenantEventStream["append"]>[2]) =>
    stream.append(tenantId, JSON.stringify({ type: "agent:log", tenantId, runId, seq }), gate, {
      counter: { runId, seq } satisfies AppendCounter,
    });
  const entries = async (tenantId: string) =>
    (await stream.readAfter(tenantId, STREAM_ORIGIN, 100)).map((e) => ({
      seq: (e.event as { seq: number }).seq,
      lost: e.afterLoss === true,
    }));

  beforeAll(() => {
    redis = new Redis(inject("redisUrl"));
    stream = new TenantEventStream(redis, new TenantStreamKeys(`counter-test-${randomUUID().slice(0, 8)}`), RETENTION);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it("appends a run's consecutive counters as they are, each run on its own count", async () => {
    const t = tenant();
    for (const seq of [1, 2, 3]) await append(t, "run-a", seq);
    await append(t, "run-b", 1);
    await append(t, "run-a", 4);
    expect(await entries(t)).toEqual([1, 2, 3, 1, 4].map((seq) => ({ seq, lost: false })));
  });

  it("marks a counter that skips one as the first after a loss, and every cursor before it resyncs", async () => {
    const t = tenant();
    await append(t, "run-a", 1);
    const second = await append(t, "run-a", 2);
    await append(t, "run-a", 4);
    expect(await entries(t)).toEqual([
      { seq: 1, lost: false },
      { seq: 2, lost: false },
      { seq: 4, lost: true },
    ]);
    expect("id" in second && (await stream.isBehindRetention(t, second.id))).toBe(true);
  });

  it("marks an overtaken counter, which then moves no marker: the newer event's live attempt stays", async () => {
    const t = tenant();
    await append(t, "run-a", 1, { mode: "arm", runId: "run-a", attempt: 1 });
    // Counted 2 (attempt 1 lost, by one process) then 3 (attempt 2 starts, by another); appended 3 first.
    const newer = await append(t, "run-a", 3, { mode: "arm", runId: "run-a", attempt: 2 });
    const older = await append(t, "run-a", 2, { mode: "clear", runId: "run-a" });
    expect(await entries(t)).toEqual([
      { seq: 1, lost: false },
      { seq: 3, lost: true },
      { seq: 2, lost: true },
    ]);
    expect(older).not.toHaveProperty("ended");
    expect("id" in newer && (await stream.isBehindRetention(t, newer.id))).toBe(true);
    // Attempt 2's progress still finds its marker: the overtaken end did not clear it.
    const progress = await stream.append(t, JSON.stringify({ type: "agent:progress", tenantId: t, seq: 0 }), {
      mode: "check",
      runId: "run-a",
      attempt: 2,
    });
    expect(progress).toHaveProperty("id");
    // And the order goes on from the newest counter.
    await append(t, "run-a", 4);
    expect((await entries(t)).at(-1)).toEqual({ seq: 4, lost: false });
  });
});

describe("a run published by two processes at once", () => {
  const ROLE = "two-publishers";
  let app: TestPulse;

  beforeAll(async () => {
    // An external role: its events are published here, and no worker holds the run.
    app = await startTestPulse({ externalAgentRoles: [ROLE] });
  });
  afterAll(async () => {
    await app?.close();
  });

  it("makes its subscribers resync, never deliver an older event after a newer one", async () => {
    const { db, bus } = app.pulse.services;
    const { tenant, runId, row, client, seen } = await followedActiveRun(app, ROLE);
    try {
      // What two processes leave: both events counted by the database, in this order...
      const counted = await db.agentRun.update({ where: { id: runId }, data: { seq: { increment: 2 } } });
      const line = (seq: number, message: string) =>
        JSON.stringify({ ...attemptFields(row, 1), type: "agent:log", level: "info", message, seq, at: "" });
      // ...and appended in the other.
      await bus.stream.append(tenant.tenantId, line(counted.seq, "second"), undefined, {
        counter: { runId, seq: counted.seq },
      });
      await bus.stream.append(tenant.tenantId, line(counted.seq - 1, "first"), undefined, {
        counter: { runId, seq: counted.seq - 1 },
      });
      // An event published after both: once the client holds it (delivered, or in a resync's
      // snapshot), it has read past the two.
      const third = await bus.publish({ ...attemptFields(row, 1), type: "agent:log", level: "info", message: "third" });
      type Seen = { type: string; message?: string; seq?: number; snapshot?: { runs: { id: string; seq: number }[] } };
      const runSeq = (d: Seen) => d.seq ?? d.snapshot?.runs.find((r) => r.id === runId)?.seq ?? 0;
      const items = await eventually(
        () => seen.items.map((item) => item.data as Seen),
        (list) => list.some((d) => runSeq(d) >= third!.event.seq),
        "the event after both",
      );
      expect(items.some((d) => d.type === "resync")).toBe(true);
      expect(items.filter((d) => d.type === "agent:log").map((d) => d.message)).not.toContain("first");
      expect(items.filter((d) => d.type === "agent:log").map((d) => d.message)).not.toContain("second");
      // The run's counter, as the client follows it, never goes back.
      const seqs = items.map(runSeq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    } finally {
      seen.unsubscribe();
      await client.close();
    }
  });
});
