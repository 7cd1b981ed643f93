import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import { rateWaitMs, REFUSED_RETRY_MS, refusalWaitMs, retryRefusals } from "../src/refusals.js";

/** An error as tRPC's client makes it of the server's answer (or of the HTTP edge's, which has the same envelope). */
function answered(code: string, retryAfterSeconds?: number | null) {
  return TRPCClientError.from({
    error: { code: -32029, message: "refused; retry in 9 s", data: { code, httpStatus: 429, retryAfterSeconds } },
  });
}

describe("refusalWaitMs", () => {
  it("reads the wait from the refusal's data, never from its message", () => {
    expect(refusalWaitMs(answered("TOO_MANY_REQUESTS", 3))).toBe(3_000);
    expect(refusalWaitMs(answered("TOO_MANY_REQUESTS", 0.5))).toBe(500);
  });

  it("waits REFUSED_RETRY_MS when the refusal names no time (a cap), and at most a minute", () => {
    expect(refusalWaitMs(answered("TOO_MANY_REQUESTS", null))).toBe(REFUSED_RETRY_MS);
    expect(refusalWaitMs(answered("TOO_MANY_REQUESTS"))).toBe(REFUSED_RETRY_MS);
    expect(refusalWaitMs(answered("TOO_MANY_REQUESTS", 0))).toBe(REFUSED_RETRY_MS);
    expect(refusalWaitMs(answered("TOO_MANY_REQUESTS", 600))).toBe(60_000);
  });

  it("tells a rate's refusal, which names its wait, from a cap's, which names none", () => {
    expect(rateWaitMs(answered("TOO_MANY_REQUESTS", 3))).toBe(3_000);
    expect(rateWaitMs(answered("TOO_MANY_REQUESTS", null))).toBeNull();
    expect(rateWaitMs(answered("UNAUTHORIZED", 3))).toBeNull();
  });

  it("is null for every other error, the client's own included", () => {
    expect(refusalWaitMs(answered("UNAUTHORIZED", 3))).toBeNull();
    expect(refusalWaitMs(TRPCClientError.from(new Error("Active connection is not open")))).toBeNull();
    expect(refusalWaitMs(new Error("fetch failed"))).toBeNull();
    expect(refusalWaitMs(null)).toBeNull();
  });
});

describe("retryRefusals", () => {
  it("asks a refused call again when the refusal says, a few times; other failures once, with Query's backoff", () => {
    const { retry, retryDelay } = retryRefusals();
    const refused = answered("TOO_MANY_REQUESTS", 2);
    expect([0, 1, 2, 3].map((failures) => retry(failures, refused))).toEqual([true, true, true, false]);
    expect(retryDelay(0, refused)).toBe(2_000);
    expect(retryDelay(2, refused)).toBe(2_000);
    const other = new Error("fetch failed");
    expect([0, 1].map((failures) => retry(failures, other))).toEqual([true, false]);
    expect([0, 1, 5].map((failures) => retryDelay(failures, other))).toEqual([1_000, 2_000, 30_000]);
    expect(retryRefusals({ refusals: 1, others: 0 }).retry(0, other)).toBe(false);
  });
});
