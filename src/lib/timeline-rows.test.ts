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

  it("says a single chunk in characters only", () => {
    expect(describeOutput({ chunks: 1, characters: 23 })).toBe("Output: 23 characters");
  });
});
