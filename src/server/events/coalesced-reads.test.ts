import { describe, expect, it } from "vitest";
import { CoalescedReads } from "./coalesced-reads";

/** A read that resolves when the test says so, counting how often it started. */
function controlledReads() {
  const pending: ((value: number) => void)[] = [];
  let started = 0;
  const read = () =>
    new Promise<number>((resolve) => {
      started += 1;
      pending.push(resolve);
    });
  return {
    read,
    finish: (value: number) => pending.shift()!(value),
    get started() {
      return started;
    },
  };
}

describe("CoalescedReads", () => {
  it("starts a read at once for a caller when none runs for its key", async () => {
    const reads = new CoalescedReads<number>();
    const source = controlledReads();
    const first = reads.read("k", source.read);
    expect(source.started).toBe(1);
    source.finish(1);
    expect(await first).toBe(1);
    const second = reads.read("k", source.read);
    expect(source.started).toBe(2);
    source.finish(2);
    expect(await second).toBe(2);
  });

  it("never hands a caller a read that started before it asked: callers asking meanwhile share the next one", async () => {
    const reads = new CoalescedReads<number>();
    const source = controlledReads();
    const early = reads.read("k", source.read);
    const late = reads.read("k", source.read);
    const later = reads.read("k", source.read);
    // The second read waits for the first; both late callers share it.
    expect(source.started).toBe(1);
    expect(late).toBe(later);
    source.finish(1);
    expect(await early).toBe(1);
    await Promise.resolve();
    expect(source.started).toBe(2);
    source.finish(2);
    expect(await late).toBe(2);
  });

  it("starts the next read even when the one before failed", async () => {
    const reads = new CoalescedReads<number>();
    let fail: (error: Error) => void = () => {};
    const failing = reads.read("k", () => new Promise<number>((_, reject) => (fail = reject)));
    const next = reads.read("k", () => Promise.resolve(7));
    fail(new Error("database gone"));
    await expect(failing).rejects.toThrow("database gone");
    expect(await next).toBe(7);
  });

  it("keeps keys apart and forgets a key once its reads are done", async () => {
    const reads = new CoalescedReads<string>();
    const a = reads.read("a", () => Promise.resolve("A"));
    const b = reads.read("b", () => Promise.resolve("B"));
    const a2 = reads.read("a", () => Promise.resolve("A2"));
    expect(reads.size).toBe(2);
    expect(await Promise.all([a, b, a2])).toEqual(["A", "B", "A2"]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads.size).toBe(0);
  });
});
