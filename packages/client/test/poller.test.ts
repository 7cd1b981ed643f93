import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DeadlineError } from "../src/deadline.js";
import { POLL_TIMEOUT_MS, startPolling, type FeedPage } from "../src/poller.js";

const INTERVAL_MS = 2_000;

/** A poller over scripted pages (the last one repeats), recording each cursor it asked with. */
function poller(pages: FeedPage<string>[], fail: (call: number) => unknown = () => null) {
  const asked: (string | undefined)[] = [];
  const applied: string[] = [];
  let cursor: string | null = null;
  let errors = 0;
  const stop = startPolling<string>({
    fetchPage: async (from) => {
      asked.push(from);
      const error = fail(asked.length);
      if (error) throw error;
      return pages[Math.min(asked.length, pages.length) - 1]!;
    },
    cursor: () => cursor,
    onPage: (page) => {
      applied.push(...page.items.map((i) => i.item));
      cursor = page.cursor;
    },
    onError: (error) => {
      errors++;
      const { stop, retryInMs } = error as { stop?: boolean; retryInMs?: number };
      return stop ? "stop" : retryInMs !== undefined ? { retryInMs } : "retry";
    },
    intervalMs: INTERVAL_MS,
  });
  return { asked, applied, stop, errors: () => errors };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("startPolling", () => {
  it("asks again at once after an empty page with more=true, from its cursor, and waits the interval once caught up", async () => {
    const { asked, applied, stop } = poller([
      { items: [], cursor: "10-0", more: true },
      { items: [{ id: "12-0", item: "b" }], cursor: "12-0", more: false },
    ]);
    await vi.advanceTimersByTimeAsync(0);
    expect(asked).toEqual([undefined, "10-0"]);
    expect(applied).toEqual(["b"]);

    await vi.advanceTimersByTimeAsync(INTERVAL_MS - 1);
    expect(asked).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(asked).toEqual([undefined, "10-0", "12-0"]);
    stop();
    await vi.advanceTimersByTimeAsync(INTERVAL_MS * 3);
    expect(asked).toHaveLength(3);
  });

  it("waits the interval after a failed page, and stops for good when told to", async () => {
    const failing = poller([{ items: [], cursor: "1-0", more: false }], (call) => (call === 1 ? new Error("x") : null));
    await vi.advanceTimersByTimeAsync(INTERVAL_MS - 1);
    expect(failing.asked).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(failing.asked).toEqual([undefined, undefined]);
    failing.stop();

    const ended = poller([{ items: [], cursor: "1-0", more: false }], () => ({ stop: true }));
    await vi.advanceTimersByTimeAsync(INTERVAL_MS * 3);
    expect(ended.asked).toHaveLength(1);
    expect(ended.errors()).toBe(1);
  });

  it("waits as long as the error's answer says, not the interval, then polls on as before", async () => {
    const refused = poller([{ items: [{ id: "1-0", item: "a" }], cursor: "1-0", more: false }], (call) =>
      call === 1 ? { retryInMs: 7_000 } : null,
    );
    await vi.advanceTimersByTimeAsync(6_999);
    expect(refused.asked).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(refused.asked).toHaveLength(2);
    expect(refused.applied).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(refused.asked).toHaveLength(3);
    refused.stop();
  });

  it("fails a poll that has not answered within its time, aborts its request, and polls again", async () => {
    const signals: AbortSignal[] = [];
    const errors: unknown[] = [];
    const applied: string[] = [];
    const stop = startPolling<string>({
      fetchPage: (_from, signal) => {
        signals.push(signal);
        // The first request never ends (a proxy that took it and answers nothing).
        if (signals.length === 1) return new Promise(() => {});
        return Promise.resolve({ items: [{ id: "1-0", item: "a" }], cursor: "1-0", more: false });
      },
      cursor: () => null,
      onPage: (page) => applied.push(...page.items.map((i) => i.item)),
      onError: (error) => (errors.push(error), "retry"),
      intervalMs: INTERVAL_MS,
    });
    await vi.advanceTimersByTimeAsync(POLL_TIMEOUT_MS - 1);
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(DeadlineError);
    expect(signals[0]!.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(applied).toEqual(["a"]);
    expect(signals[1]!.aborted).toBe(false);
    stop();
  });
});
