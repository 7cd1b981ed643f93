import { cp, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { describe, expect, inject, it } from "vitest";
import { openDatabase } from "./db";
import { applyMigrations, createMigration, migrationsDir, readMigrations } from "./migrations";
import { openTestDatabase } from "../test/harness";

const expectedTables = [
  "AgentRun",
  "ContextFile",
  "RunLog",
  "RunOutputChunk",
  "RunStep",
  "Session",
  "ShareLink",
  "Tenant",
  "User",
  "_prisma_migrations",
];

describe("migrations", () => {
  it("are in Prisma's format and cover every change in schema.prisma", async () => {
    const list = await readMigrations();
    expect(list.lockfile.content).toContain('provider = "postgresql"');
    expect(list.migrationDirectories.length).toBeGreaterThan(0);
    for (const dir of list.migrationDirectories) {
      expect(dir.path).toMatch(/^\d{14}_[a-z0-9_]+$/);
      expect(dir.migrationFile.content.tag).toBe("ok");
    }
    // Replaying the migrations and diffing against the schema must find nothing left to do.
    const scratchDir = await mkdtemp(path.join(os.tmpdir(), "pulse-migrations-"));
    await cp(migrationsDir, scratchDir, { recursive: true });
    const scratch = new PGlite("memory://");
    try {
      const drift = await createMigration(new PrismaPGlite(scratch), "drift", scratchDir);
      expect(drift, "schema.prisma changed without a migration: run `npm run db:migration -- <name>`").toBeNull();
    } finally {
      await scratch.close();
      await rm(scratchDir, { recursive: true, force: true });
    }
  });

  it("apply on PGlite, once, recording each in _prisma_migrations", async () => {
    const pglite = new PGlite("memory://");
    try {
      const factory = new PrismaPGlite(pglite);
      const first = await applyMigrations(factory);
      expect(first).toEqual((await readMigrations()).migrationDirectories.map((d) => d.path));
      expect(await applyMigrations(factory)).toEqual([]);
      const tables = await pglite.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual(expectedTables);
      const applied = await pglite.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
        "SELECT migration_name, checksum, finished_at FROM _prisma_migrations",
      );
      expect(applied.rows).toHaveLength(first.length);
      for (const row of applied.rows) {
        expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
        expect(row.finished_at).not.toBeNull();
      }
    } finally {
      await pglite.close();
    }
  });

  it("move each run's stored output into chunks no longer than an output event's (20261206101119_run_output_chunks)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "pulse-migrations-"));
    const pglite = new PGlite("memory://");
    try {
      const factory = new PrismaPGlite(pglite);
      const migrations = (await readMigrations()).migrationDirectories.map((d) => d.path);
      const moving = migrations.indexOf("20261206101119_run_output_chunks");
      for (const name of migrations.slice(0, moving))
        await cp(path.join(migrationsDir, name), path.join(dir, name), { recursive: true });
      await cp(path.join(migrationsDir, "migration_lock.toml"), path.join(dir, "migration_lock.toml"));
      await applyMigrations(factory, dir);
      // A run whose first 1,000 characters were dropped, keeping 40,000, on its second attempt.
      const kept = Array.from({ length: 40_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
      await pglite.query(`INSERT INTO "Tenant" ("id", "name") VALUES ('t', 't')`);
      await pglite.query(
        `INSERT INTO "AgentRun" ("id", "tenantId", "agentRole", "queue", "jobId", "attempt", "output", "outputLength", "updatedAt")
         VALUES ('r', 't', 'writer', 'writer', 'r', 2, $1, 41000, now()), ('quiet', 't', 'writer', 'writer', 'quiet', 1, '', 0, now())`,
        [kept],
      );
      expect(await applyMigrations(factory)).toEqual(migrations.slice(moving));
      const chunks = await pglite.query<{ runId: string; attempt: number; start: number; text: string }>(
        `SELECT "runId", "attempt", "start", "text" FROM "RunOutputChunk" ORDER BY "runId", "start"`,
      );
      expect(chunks.rows.map((c) => [c.runId, c.attempt, c.start, c.text.length])).toEqual([
        ["r", 2, 1_000, 16_384],
        ["r", 2, 17_384, 16_384],
        ["r", 2, 33_768, 7_232],
      ]);
      expect(chunks.rows.map((c) => c.text).join("")).toBe(kept);
    } finally {
      await pglite.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("persist an embedded database across restarts", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "pulse-pglite-"));
    try {
      const first = await openDatabase({ pgliteDir: dir });
      await first.prisma.tenant.create({ data: { name: "Kept" } });
      await first.close();
      const second = await openDatabase({ pgliteDir: dir });
      expect((await second.prisma.tenant.findMany()).map((t) => t.name)).toEqual(["Kept"]);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!inject("databaseUrl"))(
    "apply on PostgreSQL, giving the same tables, and let go of Prisma's migration lock",
    async () => {
      const database = await openTestDatabase("postgres");
      try {
        const tables = await database.prisma.$queryRaw<{ table_name: string }[]>`
        SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`;
        expect(tables.map((r) => r.table_name)).toEqual(expectedTables);
        // Held on, it would make every other process that migrates this database time out.
        const locks = await database.prisma.$queryRaw<{ held: number }[]>`
        SELECT count(*)::int AS "held" FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
        expect(locks).toEqual([{ held: 0 }]);
      } finally {
        await database.close();
      }
    },
  );
});
