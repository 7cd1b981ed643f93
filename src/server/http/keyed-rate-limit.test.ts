import { describe, expect, it } from "vitest";
import { KeyedRateLimit } from "./keyed-rate-limit";

describe("KeyedRateLimit", () => {
  it("allows a burst of twice the rate per key, then says how long to wait, and refills with time", () => {
    let now = 0;
    const limit = new KeyedRateLimit(5, 100, () => now);
    for (let i = 0; i < 10; i++) expect(limit.take("10.0.0.1")).toBe(0);
    expect(limit.take("10.0.0.1")).toBe(1);
    // Another key has its own budget.
    expect(limit.take("10.0.0.2", 10)).toBe(0);
    now += 1_000;
    expect(limit.take("10.0.0.1", 5)).toBe(0);
    expect(limit.take("10.0.0.1")).toBe(1);
  });

  it("charges a cost beyond the burst as the whole burst, so a large batch can pass once the budget is full", () => {
    let now = 0;
    const limit = new KeyedRateLimit(1, 100, () => now);
    expect(limit.take("tenant", 32)).toBe(0);
    expect(limit.take("tenant", 32)).toBe(2);
    now += 2_000;
    expect(limit.take("tenant", 32)).toBe(0);
  });

  it("forgets the oldest key beyond its size, which then starts with a full budget", () => {
    const limit = new KeyedRateLimit(1, 2, () => 0);
    expect(limit.take("a", 2)).toBe(0);
    expect(limit.take("a")).toBe(1);
    limit.take("b");
    limit.take("c");
    expect(limit.take("a")).toBe(0);
  });
});
