import calculateSlot from "cluster-key-slot";
import { describe, expect, it } from "vitest";
import { TenantStreamKeys } from "./event-stream";
import { planStreamReads } from "./stream-read-plan";

const keys = new TenantStreamKeys("pulse");
const tenantKeys = (n: number) => Array.from({ length: n }, (_, i) => keys.events(`tenant-${i}`));

/** Every index once, in some call. */
function covered(calls: number[][], n: number): boolean {
  const seen = calls.flat().sort((a, b) => a - b);
  return seen.length === n && seen.every((index, i) => index === i);
}

describe("planStreamReads", () => {
  it("chunks a standalone Redis's reads to the bound, covering every key once", () => {
    const calls = planStreamReads(tenantKeys(1_201), { bySlot: false, maxKeys: 500 });
    expect(calls.map((c) => c.length)).toEqual([500, 500, 201]);
    expect(covered(calls, 1_201)).toBe(true);
  });

  it("on a cluster puts only keys of one slot in a call, each within the bound", () => {
    const all = tenantKeys(5_000);
    // A slot crowded past the bound: its keys need several calls.
    const crowded = Array.from({ length: 30 }, (_, i) => keys.events(`same-${i}`).replace(/\{[^}]*\}/, "{one-slot}"));
    const input = [...all, ...crowded];
    const calls = planStreamReads(input, { bySlot: true, maxKeys: 8 });
    expect(covered(calls, input.length)).toBe(true);
    for (const call of calls) {
      expect(call.length).toBeLessThanOrEqual(8);
      expect(new Set(call.map((i) => calculateSlot(input[i]!))).size).toBe(1);
    }
    const crowdedCalls = calls.filter((call) => call.some((i) => input[i]!.includes("{one-slot}")));
    expect(crowdedCalls.length).toBeGreaterThanOrEqual(4);
  });

  it("plans 70k keys (a spread of all of them into one XREAD threw a RangeError) in calls within the bound", () => {
    const all = tenantKeys(70_000);
    for (const bySlot of [false, true]) {
      const calls = planStreamReads(all, { bySlot, maxKeys: 500 });
      expect(covered(calls, all.length)).toBe(true);
      expect(Math.max(...calls.map((call) => call.length))).toBeLessThanOrEqual(500);
    }
  });
});
