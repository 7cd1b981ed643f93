import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connectClient, eventually, registerTenant, startTestPulse, type TestPulse } from "../../test/harness";

/** Connections this Pulse opened, as Redis sees them (each is named `<prefix>:<purpose>`). */
async function pulseConnections(admin: Redis, prefix: string): Promise<string[]> {
  const list = (await admin.client("LIST")) as string;
  return list
    .split("\n")
    .map((line) => /name=(\S*)/.exec(line)?.[1] ?? "")
    .filter((name) => name.startsWith(`${prefix}:`))
    .sort();
}

let admin: Redis;
beforeAll(() => {
  admin = new Redis(inject("redisUrl"));
});
afterAll(async () => {
  await admin.quit();
});

describe("TenantStreamReader", () => {
  let app: TestPulse;
  afterAll(async () => {
    await app?.close();
  });

  it("serves many subscribers of many tenants without opening a Redis connection per subscriber", async () => {
    app = await startTestPulse({ runWorkers: false });
    const tenants = await Promise.all([1, 2, 3].map(() => registerTenant(app)));
    const clients = tenants.map((t) => connectClient(app, t.token));
    const received = tenants.map(() => [] as string[]);
    const subscriptions = clients.flatMap((client, i) =>
      Array.from({ length: 10 }, () =>
        client.trpc.agent.onStatus.subscribe({}, { onData: (e) => received[i]!.push((e.data as { type: string }).type) }),
      ),
    );
    try {
      await eventually(() => received.map((r) => r.filter((t) => t === "snapshot").length), (n) => n.every((c) => c === 10), "30 snapshots");
      expect(app.pulse.services.reader.tenantCount).toBe(3);
      // The process's fixed set: commands, queues, and the one blocking stream reader.
      const fixed = ["command", "queues", "stream-reader"].map((n) => `${app.prefix}:${n}`);
      expect(await pulseConnections(admin, app.prefix)).toEqual(fixed);
    } finally {
      subscriptions.forEach((s) => s.unsubscribe());
      await Promise.all(clients.map((c) => c.close()));
    }
    await eventually(() => app.pulse.services.reader.tenantCount, (n) => n === 0, "the reader to drop tenants without subscribers");
  });

  it("closes every connection it opened on shutdown", async () => {
    const other = await startTestPulse();
    expect((await pulseConnections(admin, other.prefix)).length).toBeGreaterThan(0);
    await other.close();
    await eventually(() => pulseConnections(admin, other.prefix), (names) => names.length === 0, "all connections closed");
  });
});
