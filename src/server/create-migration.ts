import { PGlite } from "@electric-sql/pglite";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { createMigration } from "./migrations";

/**
 * `npm run db:migration -- <name>`: writes the next migration from `prisma/schema.prisma`,
 * diffing against the existing migrations replayed on a throwaway PGlite (the role Prisma's
 * shadow database plays in `prisma migrate dev`).
 */
const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error("usage: npm run db:migration -- <name in snake_case>");
  process.exit(2);
}
const pglite = new PGlite("memory://");
try {
  const created = await createMigration(new PrismaPGlite(pglite), name);
  console.log(
    created ? `created prisma/migrations/${created}/migration.sql` : "schema unchanged: no migration written",
  );
} finally {
  await pglite.close();
}
