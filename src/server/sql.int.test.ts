import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Prisma } from "../generated/prisma/client";
import { openTestDatabase } from "../test/harness";
import type { Database } from "./db";

const kinds = inject("databaseUrl") ? (["pglite", "postgres"] as const) : (["pglite"] as const);

describe.each(kinds)("SqlClient on %s", (kind) => {
  let database: Database;
  beforeAll(async () => {
    database = await openTestDatabase(kind);
    await database.sql.execute(
      Prisma.sql`CREATE TABLE "SqlProbe" ("id" text PRIMARY KEY, "n" int NOT NULL, "note" text)`,
    );
  });
  afterAll(async () => {
    await database?.close();
  });

  const count = async () =>
    (await database.sql.query<{ count: number }>(Prisma.sql`SELECT count(*)::int AS "count" FROM "SqlProbe"`))[0]!
      .count;

  it("sends values as parameters, arrays included, and answers rows keyed by column", async () => {
    const ids = ["a", "b", 'c\'); DROP TABLE "SqlProbe"; --'];
    const inserted = await database.sql.execute(Prisma.sql`
      INSERT INTO "SqlProbe" ("id", "n", "note")
      SELECT * FROM unnest(${ids}::text[], ${[1, 2, 3]}::int[], ${["one", null, "three"]}::text[])`);
    expect(inserted).toBe(3);
    const rows = await database.sql.query<{ id: string; n: number; note: string | null }>(
      Prisma.sql`SELECT "id", "n", "note" FROM "SqlProbe" WHERE "n" >= ${2} ORDER BY "n"`,
    );
    expect(rows).toEqual([
      { id: "b", n: 2, note: null },
      { id: ids[2], n: 3, note: "three" },
    ]);
  });

  it("commits a transaction that resolves and rolls back one that throws, giving its connection back either way", async () => {
    const before = await count();
    await database.sql.transaction(async (tx) => {
      await tx.execute(Prisma.sql`INSERT INTO "SqlProbe" ("id", "n") VALUES (${"kept"}, ${10})`);
    });
    expect(await count()).toBe(before + 1);
    // More failed transactions than the pool has connections: a connection kept by one would starve the next.
    for (let i = 0; i < 12; i++) {
      await expect(
        database.sql.transaction(async (tx) => {
          await tx.execute(Prisma.sql`INSERT INTO "SqlProbe" ("id", "n") VALUES (${`dropped-${i}`}, ${i})`);
          // Seen inside the transaction...
          expect(
            (await tx.query<{ n: number }>(Prisma.sql`SELECT "n" FROM "SqlProbe" WHERE "id" = ${`dropped-${i}`}`))
              .length,
          ).toBe(1);
          throw new Error("changed my mind");
        }),
      ).rejects.toThrow("changed my mind");
    }
    // ...and gone after it.
    expect(await count()).toBe(before + 1);
    await expect(database.sql.transaction((tx) => tx.transaction(async () => {}))).rejects.toThrow("do not nest");
  });

  // PGlite has no pg_prepared_statements to look in, and no pool to prepare on.
  if (kind === "postgres")
    it("prepares each statement text once per connection, by name", async () => {
      const statement = (id: string) => Prisma.sql`SELECT "n" FROM "SqlProbe" WHERE "id" = ${id}`;
      // One transaction is one connection: its session's prepared statements are this connection's.
      const prepared = await database.sql.transaction(async (tx) => {
        await tx.query(statement("a"));
        await tx.query(statement("b"));
        return tx.query<{ name: string }>(
          Prisma.sql`SELECT "name" FROM pg_prepared_statements WHERE "statement" = ${statement("").text}`,
        );
      });
      expect(prepared).toEqual([{ name: expect.stringMatching(/^pulse_\d+$/) }]);
    });
});
