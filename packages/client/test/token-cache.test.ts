import { afterEach, describe, expect, it, vi } from "vitest";
import { TokenCache, TOKEN_TIMEOUT_MS, type TokenAnswer } from "../src/client.js";
import { DeadlineError } from "../src/deadline.js";

function cache(answers: TokenAnswer[]) {
  let now = 0;
  let calls = 0;
  const tokens = new TokenCache(
    async () => answers[calls++]!,
    () => now,
  );
  return { tokens, calls: () => calls, advance: (ms: number) => (now += ms) };
}

describe("TokenCache", () => {
  it("reuses a token with an expiry until a minute before it, then fetches a new one", async () => {
    const { tokens, calls, advance } = cache([
      { token: "a", expiresAt: 300_000 },
      { token: "b", expiresAt: 600_000 },
    ]);
    expect(await tokens.get()).toBe("a");
    advance(200_000);
    expect(await tokens.get()).toBe("a");
    advance(50_000); // 50 s before expiry
    expect(await tokens.get()).toBe("b");
    expect(calls()).toBe(2);
  });

  it("asks every time for a bare token, and once for concurrent callers", async () => {
    const { tokens, calls } = cache(["a", "b", "c"]);
    expect(await Promise.all([tokens.get(), tokens.get()])).toEqual(["a", "a"]);
    expect(await tokens.get()).toBe("b");
    expect(calls()).toBe(2);
  });

  it("fetches again after forget() (the server closed the socket to renew its token)", async () => {
    const { tokens } = cache([
      { token: "a", expiresAt: new Date(3_600_000).toISOString() },
      { token: "b", expiresAt: 7_200_000 },
    ]);
    expect(await tokens.get()).toBe("a");
    tokens.forget();
    expect(await tokens.get()).toBe("b");
  });

  it("gives up on an answer that does not come within its time, aborts it, and asks again on the next call", async () => {
    vi.useFakeTimers();
    const signals: AbortSignal[] = [];
    const tokens = new TokenCache(async (signal) => {
      signals.push(signal);
      // The first request never ends (a proxy that took it and answers nothing); it ignores its signal.
      return signals.length === 1 ? new Promise<TokenAnswer>(() => {}) : "b";
    });
    const first = tokens.get();
    const failed = expect(first).rejects.toThrow(DeadlineError);
    await vi.advanceTimersByTimeAsync(TOKEN_TIMEOUT_MS - 1);
    expect(signals[0]!.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await failed;
    expect(signals[0]!.aborted).toBe(true);
    expect(await tokens.get()).toBe("b");
    expect(signals).toHaveLength(2);
  });
});

afterEach(() => {
  vi.useRealTimers();
});
