import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, inject, it, vi } from "vitest";
import { connectRedis } from "../redis";
import { TenantEventStream, TenantStreamKeys } from "./event-stream";

describe("TenantEventStream.readAfter", () => {
  const redis = connectRedis(inject("redisUrl"), "stream-pages-test");
  const stream = new TenantEventStream(redis, new TenantStreamKeys(`pages-${randomUUID().slice(0, 8)}`), {
    maxAgeMs: 60_000,
    minEvents: 100,
    maxEvents: 1_000,
  });
  afterAll(() => redis.disconnect());

  it("shares one read among the callers asking for the same page at once, and never hands out a read older than the ask", async () => {
    const tenant = randomUUID();
    for (let n = 0; n < 10; n++) await stream.append(tenant, JSON.stringify({ n }));
    const xrange = vi.spyOn(redis, "xrange");
    // A tenant's dashboards reconnecting together, all from the stream's origin.
    const pages = await Promise.all(Array.from({ length: 20 }, () => stream.readAfter(tenant, "0-0", 500)));
    expect(xrange.mock.calls.length).toBeLessThanOrEqual(2);
    for (const page of pages) expect(page.map((e) => e.event)).toEqual(pages[0]!.map((e) => e.event));
    expect(pages[0]).toHaveLength(10);
    // Asked after an append, a page holds it: nothing is kept once the reads are done.
    await stream.append(tenant, JSON.stringify({ n: 10 }));
    expect(await stream.readAfter(tenant, "0-0", 500)).toHaveLength(11);
    xrange.mockRestore();
  });
});
