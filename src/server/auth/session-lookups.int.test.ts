import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Database } from "../db";
import { openTestDatabase } from "../../test/harness";
import { SessionLookups } from "./session-lookups";

describe("SessionLookups", () => {
  let database: Database;
  let user: { id: string; tenantId: string };

  beforeAll(async () => {
    database = await openTestDatabase();
    const tenant = await database.prisma.tenant.create({ data: { name: "Lookups" } });
    user = await database.prisma.user.create({ data: { tenantId: tenant.id } });
    const session = (id: string, expiresInMs: number, revoked = false) => ({
      id,
      userId: user.id,
      tenantId: tenant.id,
      expiresAt: new Date(Date.now() + expiresInMs),
      ...(revoked ? { revokedAt: new Date() } : {}),
    });
    await database.prisma.session.createMany({
      data: [
        ...Array.from({ length: 300 }, (_, i) => session(`live-${i}`, 3_600_000)),
        session("expired", -1_000),
        session("revoked", 3_600_000, true),
      ],
    });
  });

  afterAll(async () => {
    await database?.close();
  });

  it("reads the sessions asked for in one turn with one query, each caller getting its own row or null", async () => {
    const lookups = new SessionLookups(database.sql);
    const reads = vi.spyOn(database.sql, "query");
    const ids = [...Array.from({ length: 300 }, (_, i) => `live-${i}`), "live-7", "expired", "revoked", "missing"];
    const rows = await Promise.all(ids.map((id) => lookups.find(id)));
    expect(reads).toHaveBeenCalledTimes(1);
    expect(rows.slice(0, 301).map((row) => row?.id)).toEqual([...ids.slice(0, 301)]);
    const stored = await database.prisma.session.findUniqueOrThrow({ where: { id: "live-0" } });
    expect(rows[0]).toEqual({ id: "live-0", userId: user.id, tenantId: user.tenantId, expiresAt: stored.expiresAt });
    expect(rows.slice(301)).toEqual([null, null, null]);
    // A later turn reads again: nothing is kept, so a revocation since is seen.
    await database.prisma.session.update({ where: { id: "live-0" }, data: { revokedAt: new Date() } });
    expect(await lookups.find("live-0")).toBeNull();
    expect(reads).toHaveBeenCalledTimes(2);
    reads.mockRestore();
  });
});
