import { Redis } from "ioredis";
import { describe, expect, inject, it } from "vitest";
import { CapturedLog } from "../test/captured-log";
import { createLogger, MAX_ARGUMENT_CHARS } from "./logger";

describe("logged errors", () => {
  it("keep a failed EVAL's command name and cut its script, so a line stays short", async () => {
    const redis = new Redis(inject("redisUrl"), { lazyConnect: true });
    // A script the size of BullMQ's moveToActive, which fails as a refused write would.
    const script = `${"-- padding that stands for a long Lua script\n".repeat(250)}return redis.error_reply("OOM command not allowed")`;
    const error = await redis
      .connect()
      .then(() => redis.eval(script, 1, "some-key", Buffer.alloc(5_000), "x".repeat(10_000)))
      .catch((err: unknown) => err)
      .finally(() => redis.disconnect());
    expect((error as { command: { args: string[] } }).command.args[0]).toBe(script);

    const captured = new CapturedLog();
    createLogger("info", "test", captured).error({ err: error }, "worker error");
    const [line] = captured.lines;
    expect(line!.err.message).toContain("OOM command not allowed");
    expect(line!.err.command.name).toBe("eval");
    expect(line!.err.command.args[0].length).toBeLessThan(MAX_ARGUMENT_CHARS + 30);
    expect(line!.err.command.args.slice(1, 3)).toEqual(["1", "some-key"]);
    expect(line!.err.command.args[3]).toBe("[5000 bytes]");
    expect(captured.longestLine).toBeLessThan(2_500);
  });

  it("bound any long text an error carries, under err or error", () => {
    const captured = new CapturedLog();
    const huge = Object.assign(new Error("y".repeat(50_000)), { details: { nested: ["z".repeat(50_000)] } });
    const logger = createLogger("info", "test", captured);
    logger.error({ err: huge }, "failed");
    logger.error({ error: huge }, "failed");
    logger.error(huge, "failed");
    expect(captured.lines).toHaveLength(3);
    expect(captured.longestLine).toBeLessThan(8_000);
    expect(captured.lines[0]!.err.details.nested[0]).toMatch(/^z+… \(50000 chars\)$/);
  });
});
