import { randomUUID } from "node:crypto";
import pg from "pg";
import { loadEnv } from "../src/server/env";
import { log } from "./bench-log";

/**
 * Pulse's database for a bench run: a fresh PostgreSQL database that its server and its
 * worker (publisher) share, dropped at the end, or PGlite inside the server when no
 * PostgreSQL is reachable.
 */
export interface BenchDatabase {
  url: string | null;
  description: string;
  /** PostgreSQL's counters for the bench database so far; null on PGlite, which keeps none. */
  activity(): Promise<DatabaseActivity | null>;
  drop(): Promise<void>;
}

/** Cumulative counters from `pg_stat_database`: subtract two readings for what a phase cost the database. */
export interface DatabaseActivity {
  /** Committed transactions: each statement Prisma runs outside a transaction is one. */
  transactions: number;
  tuplesReturned: number;
  blocksRead: number;
  blocksHit: number;
}

/**
 * The bench database's counters, after a second's wait for the busy backends to report
 * theirs: a backend flushes its counters at most once a second while busy, and what is
 * left when it goes idle up to 10 s later (PostgreSQL 15), so a difference of two readings
 * may shift up to a second's work from one phase to the next.
 *
 * @see https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW
 */
async function databaseActivity(adminUrl: string, name: string): Promise<DatabaseActivity> {
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<Record<string, string>>(
      "SELECT xact_commit, tup_returned, blks_read, blks_hit FROM pg_stat_database WHERE datname = $1",
      [name],
    );
    const row = rows[0] ?? {};
    return {
      transactions: Number(row.xact_commit ?? 0),
      tuplesReturned: Number(row.tup_returned ?? 0),
      blocksRead: Number(row.blks_read ?? 0),
      blocksHit: Number(row.blks_hit ?? 0),
    };
  } finally {
    await client.end();
  }
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

export async function prepareDatabase(requested: string | null | undefined): Promise<BenchDatabase> {
  const candidates =
    requested === null
      ? []
      : requested
        ? [requested]
        : [loadEnv().DATABASE_URL, "postgres://postgres@127.0.0.1:5432/test"].filter((u): u is string => !!u);
  for (const adminUrl of candidates) {
    if (!(await reachable(adminUrl))) continue;
    const name = `pulse_bench_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    const version = ((await admin.query("SHOW server_version")).rows[0] as { server_version: string }).server_version;
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      description: `PostgreSQL ${version} (database ${name}, dropped afterwards)`,
      activity: () => databaseActivity(adminUrl, name),
      async drop() {
        const cleanup = new pg.Client({ connectionString: adminUrl });
        await cleanup.connect();
        await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await cleanup.end();
      },
    };
  }
  log(
    "bench: no PostgreSQL reachable (DATABASE_URL, postgres://postgres@127.0.0.1:5432/test): Pulse publishes inside its server process on PGlite, so its server CPU includes publishing",
  );
  return {
    url: null,
    description: "PGlite in memory, inside the Pulse server process",
    activity: async () => null,
    drop: async () => {},
  };
}
