import { describe, expect, it } from "vitest";
import { estimateChainTimeLeft } from "./chain-estimate";
import type { RunView } from "./trpc/types";

const t0 = Date.parse("2026-01-01T00:00:00.000Z");
const run = (status: RunView["status"], startedAt: number | null = null) =>
  ({ status, startedAt: startedAt === null ? null : new Date(startedAt).toISOString() }) as RunView;

describe("estimateChainTimeLeft", () => {
  const typical = { a: 10_000, b: 20_000, c: 5_000 };

  it("adds the running agent's remaining typical time to the typical time of those after it", () => {
    const chain = [{ role: "a", run: run("completed") }, { role: "b", run: run("active", t0) }, { role: "c" }];
    expect(estimateChainTimeLeft(chain, typical, t0 + 8_000)).toBe(12_000 + 5_000);
  });

  it("never counts a running agent below zero when it overruns", () => {
    const chain = [{ role: "a", run: run("active", t0) }, { role: "b" }, { role: "c" }];
    expect(estimateChainTimeLeft(chain, typical, t0 + 60_000)).toBe(25_000);
  });

  it("has no estimate without history for an agent still to run, or when nothing runs", () => {
    expect(estimateChainTimeLeft([{ role: "a", run: run("queued") }, { role: "x" }], typical, t0)).toBeNull();
    expect(
      estimateChainTimeLeft(
        [
          { role: "a", run: run("completed") },
          { role: "b", run: run("failed") },
        ],
        typical,
        t0,
      ),
    ).toBeNull();
  });
});
