import { describe, expect, it } from "vitest";
import type { AgentEvent } from "./trpc/types";
import { describeOutput, timelineRows } from "./timeline-rows";

const at = "2026-12-04T12:00:00.000Z";
const base = { tenantId: "t", runId: "r", jobId: "r", queue: "q", agentRole: "writer", at, seq: 1, attempt: 1 };
const output = (chunk: string) => ({ ...base, type: "agent:output", chunk }) as unknown as AgentEvent;
const progress = (message: string) =>
  ({ ...base, type: "agent:progress", progress: 50, message }) as unknown as AgentEvent;

describe("timelineRows", () => {
  it("tells a stretch of output chunks as one row, and keeps the events between stretches apart", () => {
    const timeline = [output("ab"), output("cde"), progress("half"), output("f"), output("gh"), output("i")].map(
      (event, i) => ({ id: `${i}-0`, event }),
    );
    const rows = timelineRows(timeline);
    expect(rows.map((r) => (r.output ? describeOutput(r.output) : r.event.type))).toEqual([
      "Output: 2 chunks, 5 characters",
      "agent:progress",
      "Output: 3 chunks, 4 characters",
    ]);
    expect(rows.map((r) => r.id)).toEqual(["0-0", "2-0", "3-0"]);
    // The timeline it was given is left as it was.
    expect(timeline[0]).not.toHaveProperty("output");
  });

  it("keeps only the run's lifecycle when asked: queued, each attempt's start, its failure and its end", () => {
    const event = (type: string, extra: object = {}) => ({ ...base, type, ...extra }) as unknown as AgentEvent;
    const timeline = [
      event("agent:queued"),
      event("agent:active"),
      output("ab"),
      progress("half"),
      event("agent:step", { stepId: "s", name: "Read", status: "started" }),
      event("agent:log", { level: "info", message: "x" }),
      event("agent:failed", { error: "boom", willRetry: true }),
      event("agent:active", { attempt: 2 }),
      output("cd"),
      event("agent:completed"),
    ].map((e, i) => ({ id: `${i}-0`, event: e }));
    const types = (rows: ReturnType<typeof timelineRows>) => rows.map((r) => r.event.type);
    expect(types(timelineRows(timeline, { lifecycleOnly: true }))).toEqual([
      "agent:queued",
      "agent:active",
      "agent:failed",
      "agent:active",
      "agent:completed",
    ]);
    expect(timelineRows(timeline)).toHaveLength(10);
  });

  it("says a single chunk in characters only", () => {
    expect(describeOutput({ chunks: 1, characters: 23 })).toBe("Output: 23 characters");
  });
});
