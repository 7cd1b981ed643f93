import { describe, expect, it } from "vitest";
import { TokenCache, type TokenAnswer } from "../src/client.js";

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
});
