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
  drop(): Promise<void>;
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
  return { url: null, description: "PGlite in memory, inside the Pulse server process", drop: async () => {} };
}
