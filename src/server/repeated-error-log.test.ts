import { describe, expect, it } from "vitest";
import { CapturedLog } from "../test/captured-log";
import { eventually } from "../test/harness";
import { createLogger } from "./logger";
import { RepeatedErrorLog } from "./repeated-error-log";

function setup(intervalMs: number, maxKinds?: number) {
  const captured = new CapturedLog();
  const errors = new RepeatedErrorLog(createLogger("debug", "test", captured), {
    intervalMs,
    level: "warn",
    ...(maxKinds ? { maxKinds } : {}),
  });
  return { captured, errors };
}

describe("RepeatedErrorLog", () => {
  it("logs an error the first time, then once per interval with how often it repeated", async () => {
    const { captured, errors } = setup(60_000);
    for (let i = 0; i < 5_000; i++)
      errors.report(new Error("NOPERM no permissions"), "worker error", { agentRole: "writer" });
    expect(captured.lines).toHaveLength(1);
    expect(captured.lines[0]).toMatchObject({
      msg: "worker error",
      agentRole: "writer",
      err: { message: "NOPERM no permissions" },
    });

    errors.flush();
    expect(captured.lines).toHaveLength(2);
    expect(captured.lines[1]).toMatchObject({
      msg: "worker error (repeated 4999 times in the last 60 s)",
      repeated: 4999,
      agentRole: "writer",
    });

    // An interval without it forgets it, so its return is logged at once.
    errors.flush();
    expect(captured.lines).toHaveLength(2);
    errors.flush();
    errors.report(new Error("NOPERM no permissions"), "worker error", { agentRole: "writer" });
    expect(captured.lines).toHaveLength(3);
    expect(captured.lines[2]!.msg).toBe("worker error");
    errors.close();
  });

  it("tells different errors and different sources apart", () => {
    const { captured, errors } = setup(60_000);
    errors.report(new Error("OOM"), "redis connection error", { connection: "command" });
    errors.report(new Error("OOM"), "redis connection error", { connection: "queues" });
    errors.report(new Error("NOPERM"), "redis connection error", { connection: "command" });
    errors.report(new Error("OOM"), "redis connection error", { connection: "command" });
    expect(captured.lines.map((l) => `${l.connection} ${l.err.message}`)).toEqual([
      "command OOM",
      "queues OOM",
      "command NOPERM",
    ]);
    errors.close();
    expect(captured.lines).toHaveLength(4);
    expect(captured.lines[3]!.repeated).toBe(1);
  });

  it("counts errors beyond its number of kinds together instead of logging each", () => {
    const { captured, errors } = setup(60_000, 3);
    for (let i = 0; i < 1_000; i++) errors.report(new Error(`distinct ${i}`), "job error");
    expect(captured.lines).toHaveLength(3);
    errors.close();
    expect(captured.lines.at(-1)).toMatchObject({
      msg: "(other errors) (repeated 997 times in the last 60 s)",
      repeated: 997,
    });
    expect(captured.lines).toHaveLength(4);
  });

  it("reports repeats on its own timer while they keep happening", async () => {
    const { captured, errors } = setup(50);
    const timer = setInterval(() => errors.report(new Error("refused"), "worker error"), 5);
    try {
      await eventually(
        () => captured.lines.filter((l) => l.repeated > 0).length,
        (n) => n >= 2,
        "two summaries",
      );
    } finally {
      clearInterval(timer);
      errors.close();
    }
    expect(captured.lines[0]!.repeated).toBeUndefined();
    expect(
      captured.lines.slice(1).every((l) => /^worker error \(repeated \d+ times in the last 50 ms\)$/.test(l.msg)),
    ).toBe(true);
  });
});
