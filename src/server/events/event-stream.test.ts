import { describe, expect, it } from "vitest";
import type { RedisClient } from "../redis";
import { TenantEventStream, TenantStreamKeys, wakeCarried, wakeTenant } from "./event-stream";

/**
 * A Redis that answers the append script only, with increasing ids, and records the id each
 * append named as this process's newest for the tenant (the script's lost-tail check).
 */
function scriptedRedis() {
  let next = 1;
  const named: { tenantId: string; lastAppended: string }[] = [];
  const trimmed: string[] = [];
  const redis = {
    isCluster: false,
    pulseProbe: async () => [0, null, null, 0],
    pulseAppend: async (...args: (string | number)[]) => {
      // Seven keys, then payload, gate mode, attempt, progress, run id, wake channel, tenant, newest acknowledged id.
      named.push({ tenantId: String(args[13]), lastAppended: String(args[14]) });
      return [`${next++}-0`, null, null];
    },
    // A retention pass starts with XLEN: the keys asked are the tenants trimmed.
    xlen: async (key: string) => {
      trimmed.push(key);
      return 0;
    },
  };
  return { redis: redis as unknown as RedisClient, named, trimmed };
}

describe("TenantEventStream's memory of what it appended", () => {
  it("remembers the newest id of its most recently appended tenants only, least recent forgotten first", async () => {
    const { redis, named } = scriptedRedis();
    const stream = new TenantEventStream(
      redis,
      new TenantStreamKeys("t"),
      { maxAgeMs: 60_000, minEvents: 1, maxEvents: 10 },
      { rememberedTenants: 3 },
    );
    for (const tenantId of ["a", "b", "c", "a", "d"]) await stream.append(tenantId, "{}");
    named.length = 0;
    // "b" was the least recently appended when "d" came, so it alone was forgotten.
    for (const tenantId of ["a", "c", "d", "b"]) await stream.append(tenantId, "{}");
    expect(named).toEqual([
      { tenantId: "a", lastAppended: "4-0" },
      { tenantId: "c", lastAppended: "3-0" },
      { tenantId: "d", lastAppended: "5-0" },
      { tenantId: "b", lastAppended: "" },
    ]);
  });

  it("holds at most its bound of tenants however many it appends to", async () => {
    const { redis } = scriptedRedis();
    const stream = new TenantEventStream(
      redis,
      new TenantStreamKeys("t"),
      { maxAgeMs: 60_000, minEvents: 1, maxEvents: 10 },
      { rememberedTenants: 100 },
    );
    for (let i = 0; i < 1_000; i++) await stream.append(`tenant-${i}`, "{}");
    expect((stream as unknown as { recent: Map<string, unknown> }).recent.size).toBe(100);
  });

  it("keeps when it last trimmed only its most recently appended tenants, a forgotten one trimmed at its next append", async () => {
    const { redis, trimmed } = scriptedRedis();
    const keys = new TenantStreamKeys("t");
    const stream = new TenantEventStream(
      redis,
      keys,
      { maxAgeMs: 60_000, minEvents: 1, maxEvents: 10 },
      { rememberedTenants: 3 },
    );
    const trimsOf = async (tenants: string[]) => {
      trimmed.length = 0;
      for (const tenantId of tenants) await stream.append(tenantId, "{}");
      return trimmed.map((key) => tenants.find((t) => keys.events(t) === key));
    };
    // A process trims each tenant at its first append, then not again for a minute or 1,000 appends.
    expect(await trimsOf(["a", "b", "c", "a", "b", "c"])).toEqual(["a", "b", "c"]);
    // "d" pushes out "a", the least recently appended; "a" comes back as new and pushes out "b".
    expect(await trimsOf(["d", "c", "a", "c", "d", "b"])).toEqual(["d", "a", "b"]);
  });
});

describe("wakeCarried", () => {
  it("reads the entry's id, the id before it and the entry, the entry only when asked", () => {
    const carried = wakeCarried(`tenant-1\n5-0\n6-0\n{"type":"agent:log","message":"hi"}`)!;
    expect(carried.previousId).toBe("5-0");
    expect(carried.id).toBe("6-0");
    expect(carried.entry()).toEqual({ id: "6-0", event: { type: "agent:log", message: "hi" } });
    // Not decoded to read the ids: a wake the reader does not deliver from costs no parse.
    const unread = wakeCarried("tenant-1\n5-0\n6-0\nnot json")!;
    expect(unread.id).toBe("6-0");
    expect(() => unread.entry()).toThrow(SyntaxError);
  });

  it("reads the ids of an entry too large to carry, without the entry", () => {
    const carried = wakeCarried("tenant-1\n5-0\n6-0")!;
    expect([carried.previousId, carried.id]).toEqual(["5-0", "6-0"]);
    expect(carried.entry()).toBeNull();
  });

  it("carries nothing in a wake with the tenant alone (older versions rang so for a large entry)", () => {
    expect(wakeCarried("tenant-1")).toBeNull();
    expect(wakeTenant("tenant-1")).toBe("tenant-1");
    expect(wakeTenant("tenant-1\n5-0\n6-0")).toBe("tenant-1");
  });
});
