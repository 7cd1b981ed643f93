import { describe, expect, it } from "vitest";
import { compareStreamIds, eventInputSchema, pulseEventSchema } from "./schema";

const base = {
  tenantId: "t1",
  runId: "r1",
  jobId: "r1",
  queue: "client-researcher",
  agentRole: "client-researcher",
  attempt: 1,
};

describe("event schema", () => {
  it("accepts each lifecycle event with its fields", () => {
    const events = [
      { type: "agent:queued", ...base, queuedAt: "2026-01-01T00:00:00.000Z" },
      { type: "agent:active", ...base, startedAt: "2026-01-01T00:00:00.000Z" },
      { type: "agent:progress", ...base, progress: 40, phase: "running", message: "Reading site" },
      { type: "agent:step", ...base, stepId: "s1", name: "Fetch", status: "started" },
      { type: "agent:output", ...base, chunk: "Hello" },
      { type: "agent:log", ...base, level: "info", message: "ok" },
      { type: "agent:completed", ...base, completedAt: "2026-01-01T00:00:00.000Z", nextAgent: "competitor-researcher" },
      { type: "agent:failed", ...base, error: "boom", failedAt: "2026-01-01T00:00:00.000Z", willRetry: true },
      { type: "agent:cancelled", ...base, cancelledAt: "2026-01-01T00:00:00.000Z" },
      { type: "context:status_changed", tenantId: "t1", status: "generating", version: 1 },
    ];
    for (const event of events) expect(eventInputSchema.parse(event)).toEqual(event);
  });

  it("rejects progress outside 0-100 and unknown types, naming the field", () => {
    const bad = eventInputSchema.safeParse({
      type: "agent:progress",
      ...base,
      progress: 140,
      phase: "running",
      message: "",
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(["progress"]);
    expect(eventInputSchema.safeParse({ type: "agent:exploded", ...base }).success).toBe(false);
  });

  it("requires the bus stamp on delivered events", () => {
    const input = { type: "agent:output", ...base, chunk: "x" };
    expect(pulseEventSchema.safeParse(input).success).toBe(false);
    expect(pulseEventSchema.safeParse({ ...input, seq: 3, at: "2026-01-01T00:00:00.000Z" }).success).toBe(true);
  });
});

describe("compareStreamIds", () => {
  it("orders by milliseconds, then sequence, numerically", () => {
    expect(compareStreamIds("9-0", "10-0")).toBe(-1);
    expect(compareStreamIds("10-2", "10-10")).toBe(-1);
    expect(compareStreamIds("10-2", "10-2")).toBe(0);
    expect(compareStreamIds("1700000000001-0", "1700000000000-99")).toBe(1);
    expect(compareStreamIds("0-0", "0-1")).toBe(-1);
    expect(compareStreamIds("18446744073709551615-5", "18446744073709551614-9")).toBe(1);
  });

  it("agrees with numeric order on random ids, leading zeros and a missing sequence included", () => {
    const numeric = (a: string, b: string) => {
      const [am, as = "0"] = a.split("-");
      const [bm, bs = "0"] = b.split("-");
      const d = BigInt(am!) - BigInt(bm!) || BigInt(as) - BigInt(bs);
      return d === 0n ? 0 : d < 0n ? -1 : 1;
    };
    const pick = () => {
      const ms = String(
        Math.floor(Math.random() * 3) === 0
          ? Math.floor(Math.random() * 20)
          : 1_700_000_000_000 + Math.floor(Math.random() * 5),
      );
      const seq = String(Math.floor(Math.random() * 12));
      const pad = Math.random() < 0.1 ? "0" : "";
      return Math.random() < 0.1 ? pad + ms : `${pad}${ms}-${pad}${seq}`;
    };
    for (let i = 0; i < 5_000; i++) {
      const a = pick();
      const b = pick();
      expect(compareStreamIds(a, b), `${a} vs ${b}`).toBe(numeric(a, b));
    }
  });
});
