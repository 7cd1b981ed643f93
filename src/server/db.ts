import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import type { SqlDriverAdapterFactory } from "@prisma/driver-adapter-utils";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "../generated/prisma/client";
import { applyMigrations } from "./migrations";

export type { PrismaClient } from "../generated/prisma/client";

export interface DatabaseOptions {
  /** Postgres connection string; when absent the embedded PGlite is used. */
  databaseUrl?: string;
  /** PGlite data directory, or "memory://" for a throwaway database. */
  pgliteDir: string;
  /** Apply pending migrations before handing the client out. */
  migrate?: boolean;
}

export interface Database {
  prisma: PrismaClient;
  kind: "postgres" | "pglite";
  close(): Promise<void>;
}

/**
 * Opens Pulse's database: Postgres through `@prisma/adapter-pg` when a URL is given, the
 * embedded PGlite otherwise. The Prisma client runs its WebAssembly query compiler over the
 * driver adapter, so no native engine is needed either way.
 *
 * @see https://www.prisma.io/docs/orm/overview/databases/database-drivers
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  let adapterFactory: SqlDriverAdapterFactory;
  let closeDriver: () => Promise<void>;
  let kind: Database["kind"];
  if (options.databaseUrl) {
    // A bounded connect, so a database that went away answers "unavailable" instead of hanging.
    adapterFactory = new PrismaPg({ connectionString: options.databaseUrl, max: 10, connectionTimeoutMillis: 5_000 });
    closeDriver = async () => {};
    kind = "postgres";
  } else {
    if (!options.pgliteDir.startsWith("memory://")) {
      await mkdir(options.pgliteDir, { recursive: true });
    }
    const pglite = new PGlite(options.pgliteDir);
    await pglite.waitReady;
    adapterFactory = new PrismaPGlite(pglite);
    closeDriver = () => pglite.close();
    kind = "pglite";
  }
  if (options.migrate ?? true) await applyMigrations(adapterFactory);
  const prisma = new PrismaClient({ adapter: adapterFactory });
  return {
    prisma,
    kind,
    async close() {
      await prisma.$disconnect();
      await closeDriver();
    },
  };
}
