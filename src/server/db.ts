import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import type { SqlDriverAdapterFactory } from "@prisma/driver-adapter-utils";
import { PrismaPGlite } from "pglite-prisma-adapter";
import pg from "pg";
import { PrismaClient } from "../generated/prisma/client";
import { applyMigrations } from "./migrations";
import { sqlClient, type SqlClient } from "./sql";

export type { PrismaClient } from "../generated/prisma/client";

export interface DatabaseOptions {
  /** Postgres connection string; when absent the embedded PGlite is used. */
  databaseUrl?: string;
  /** PGlite data directory, or "memory://" for a throwaway database. */
  pgliteDir: string;
  /** Apply pending migrations before handing the client out. */
  migrate?: boolean;
  /**
   * Prepare statements once per connection (PostgreSQL only; default true). Turn off behind
   * a pooler that cannot keep them across transactions (PgBouncer in transaction mode
   * before 1.21).
   */
  preparedStatements?: boolean;
}

export interface Database {
  prisma: PrismaClient;
  /** The event hot path's statements, on the same connections as `prisma` (see `SqlClient`). */
  sql: SqlClient;
  kind: "postgres" | "pglite";
  close(): Promise<void>;
}

/** Named prepared statements beyond this many distinct texts are not made: a bound on what each connection keeps. */
export const MAX_PREPARED_STATEMENTS = 500;

/**
 * Limits for Pulse's interactive transactions (a few short statements under a row lock).
 * Prisma's defaults (2 s to get a connection, 5 s in all) fail a request on a busy machine
 * whose statements are merely slow: a chaos run on two loaded cores saw a run start refused
 * after 5.5 s. A transaction this long still ends, and releases its lock, well within a
 * request's patience.
 *
 * @see https://www.prisma.io/docs/orm/prisma-client/queries/transactions#interactive-transactions
 */
export const TRANSACTION_LIMITS = { maxWait: 10_000, timeout: 15_000 } as const;
const PREPARABLE = /^\s*(select|insert|update|delete|with)\b/i;

/**
 * A name for each statement text, so `pg` prepares it once per connection and PostgreSQL
 * plans it once instead of on every call: the worker's batched writes, the projections
 * and the snapshot reads are a few statements sent over and over. Prisma sends statements
 * unnamed otherwise; planning the batch write cost PostgreSQL more than running it.
 *
 * @see https://node-postgres.com/features/queries#prepared-statements
 */
export class StatementNames {
  private readonly names = new Map<string, string>();

  /** The statement's name; "" (PostgreSQL's unnamed statement, planned on every call) past the bound or for DDL. */
  nameOf(sql: string): string {
    const known = this.names.get(sql);
    if (known !== undefined) return known;
    if (this.names.size >= MAX_PREPARED_STATEMENTS || !PREPARABLE.test(sql)) return "";
    const name = `pulse_${this.names.size + 1}`;
    this.names.set(sql, name);
    return name;
  }
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
  let migrationFactory: SqlDriverAdapterFactory;
  let closeDriver: () => Promise<void>;
  let kind: Database["kind"];
  if (options.databaseUrl) {
    // One pool for the Prisma client and the direct statements. A bounded connect, so a
    // database that went away answers "unavailable" instead of hanging.
    const config = { connectionString: options.databaseUrl, max: 10, connectionTimeoutMillis: 5_000 };
    const pool = new pg.Pool(config);
    // An idle connection the server closed (a restart, or its end racing ours on close) is
    // already out of the pool, and the next query opens a new one: nothing to do but not crash.
    pool.on("error", () => {});
    const names = options.preparedStatements === false ? null : new StatementNames();
    adapterFactory = new PrismaPg(pool, names ? { statementNameGenerator: (query) => names.nameOf(query.sql) } : {});
    // Migrations get connections of their own, closed when they are done: the schema engine
    // takes Prisma's migration advisory lock on one of them, and a connection going back to
    // the shared pool would keep it, so every other process migrating would time out.
    migrationFactory = new PrismaPg(config);
    closeDriver = () => pool.end();
    kind = "postgres";
  } else {
    if (!options.pgliteDir.startsWith("memory://")) {
      await mkdir(options.pgliteDir, { recursive: true });
    }
    const pglite = new PGlite(options.pgliteDir);
    await pglite.waitReady;
    adapterFactory = new PrismaPGlite(pglite);
    migrationFactory = adapterFactory;
    closeDriver = () => pglite.close();
    kind = "pglite";
  }
  if (options.migrate ?? true) {
    try {
      await applyMigrations(migrationFactory);
    } catch (error) {
      await closeDriver();
      throw error;
    }
  }
  const prisma = new PrismaClient({ adapter: adapterFactory });
  // Over an existing pool (or PGlite), connecting makes no new connections.
  const adapter = await adapterFactory.connect();
  return {
    prisma,
    sql: sqlClient(adapter),
    kind,
    async close() {
      await prisma.$disconnect();
      await adapter.dispose();
      await closeDriver();
    },
  };
}
