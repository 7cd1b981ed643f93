import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import { REFUSED_RETRY_MS, refusalWaitMs } from "../src/refusals.js";

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

  it("is null for every other error, the client's own included", () => {
    expect(refusalWaitMs(answered("UNAUTHORIZED", 3))).toBeNull();
    expect(refusalWaitMs(TRPCClientError.from(new Error("Active connection is not open")))).toBeNull();
    expect(refusalWaitMs(new Error("fetch failed"))).toBeNull();
    expect(refusalWaitMs(null)).toBeNull();
  });
});
