import { readdir, readFile, mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as schemaEngineBindings from "@prisma/schema-engine-wasm/schema_engine_bg";
import type { MigrationList, SchemaEngine } from "@prisma/schema-engine-wasm";
import {
  bindSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlDriverAdapterFactory,
} from "@prisma/driver-adapter-utils";

/**
 * Applies and creates migrations with Prisma's own schema engine, compiled to WebAssembly
 * and driven through a driver adapter, so nothing is downloaded and the same code serves
 * PGlite and PostgreSQL. `prisma/migrations/` stays in Prisma's format: wherever the native
 * engine can be fetched, `prisma migrate deploy` reads the same files and the same
 * `_prisma_migrations` table.
 *
 * @see https://www.prisma.io/docs/orm/prisma-migrate/understanding-prisma-migrate/migration-histories
 */

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const migrationsDir = path.join(projectRoot, "prisma/migrations");
export const schemaPath = path.join(projectRoot, "prisma/schema.prisma");

const noFilters = { externalTables: [], externalEnums: [] };

let wasmReady: Promise<void> | undefined;

/** The part of Node's `WebAssembly` global used here: TypeScript declares it only in its DOM lib, which server code is checked without. */
interface WebAssemblyGlobal {
  instantiate(bytes: Uint8Array, imports: Record<string, object>): Promise<{ instance: { exports: object } }>;
}
const wasm = () => (globalThis as unknown as { WebAssembly: WebAssemblyGlobal }).WebAssembly;

/** Instantiates the engine's WebAssembly once per process (Node 20 cannot import .wasm modules). */
function loadSchemaEngineWasm(): Promise<void> {
  wasmReady ??= (async () => {
    const require = createRequire(import.meta.url);
    const gluePath = require.resolve("@prisma/schema-engine-wasm/schema_engine_bg");
    const bytes = await readFile(gluePath.replace(/\.js$/, ".wasm"));
    const { instance } = await wasm().instantiate(bytes, { "./schema_engine_bg.js": schemaEngineBindings });
    const exports = instance.exports as Record<string, unknown> & { __wbindgen_start?: () => void };
    schemaEngineBindings.__wbg_set_wasm(exports);
    exports.__wbindgen_start?.();
  })();
  return wasmReady;
}

/**
 * The engine, and how to let go of it: freeing the engine leaves the connections it opened
 * in their pools, and the one that took Prisma's migration advisory lock keeps it until the
 * pool drops it (10 s idle), so every other process migrating meanwhile waits or times out.
 * Disposing them releases the lock as soon as the engine is done.
 */
async function openSchemaEngine(
  adapterFactory: SqlDriverAdapterFactory,
  schema: string,
): Promise<{ engine: SchemaEngine; close(): Promise<void> }> {
  await loadSchemaEngineWasm();
  const opened: SqlDriverAdapter[] = [];
  const tracked: SqlDriverAdapterFactory = {
    provider: adapterFactory.provider,
    adapterName: adapterFactory.adapterName,
    async connect() {
      const adapter = await adapterFactory.connect();
      opened.push(adapter);
      return adapter;
    },
  };
  const engine = await schemaEngineBindings.SchemaEngine.new(
    { datamodels: [[schemaPath, schema]] },
    () => {},
    bindSqlAdapterFactory(tracked),
  );
  return {
    engine,
    async close() {
      engine.free();
      await Promise.all(opened.splice(0).map((adapter) => adapter.dispose().catch(() => {})));
    },
  };
}

/** Reads `prisma/migrations/` the way Prisma's CLI hands it to the engine. */
export async function readMigrations(dir = migrationsDir): Promise<MigrationList> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const directories = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const lockPath = path.join(dir, "migration_lock.toml");
  return {
    baseDir: dir,
    lockfile: {
      path: "migration_lock.toml",
      content: await readFile(lockPath, "utf8").catch(() => null),
    },
    shadowDbInitScript: "",
    migrationDirectories: await Promise.all(
      directories.map(async (name) => ({
        path: name,
        migrationFile: {
          path: "migration.sql",
          content: await readFile(path.join(dir, name, "migration.sql"), "utf8").then(
            (value) => ({ tag: "ok" as const, value }),
            (error: Error) => ({ tag: "error" as const, value: error.message }),
          ),
        },
      })),
    ),
  };
}

/** Applies every migration the database has not seen yet; returns the names applied. */
export async function applyMigrations(adapterFactory: SqlDriverAdapterFactory, dir = migrationsDir): Promise<string[]> {
  const schema = await readFile(schemaPath, "utf8");
  const { engine, close } = await openSchemaEngine(adapterFactory, schema);
  try {
    const { appliedMigrationNames } = await engine.applyMigrations({
      migrationsList: await readMigrations(dir),
      filters: noFilters,
    });
    return appliedMigrationNames;
  } finally {
    await close();
  }
}

/**
 * Writes a new migration holding the difference between the existing migrations and
 * `schema.prisma`, as `prisma migrate dev --create-only` would: the existing migrations are
 * applied to the (throwaway) database behind `scratchFactory`, which then plays the shadow
 * database's part. Returns the new folder's name, or null when the schema has not changed.
 */
export async function createMigration(
  scratchFactory: SqlDriverAdapterFactory,
  name: string,
  dir = migrationsDir,
  now = new Date(),
): Promise<string | null> {
  await applyMigrations(scratchFactory, dir);
  const schema = await readFile(schemaPath, "utf8");
  const files = [{ path: schemaPath, content: schema }];
  const { engine, close } = await openSchemaEngine(scratchFactory, schema);
  try {
    const { stdout } = await engine.diff({
      from: { tag: "schemaDatasource", files, configDir: path.dirname(schemaPath) },
      to: { tag: "schemaDatamodel", files },
      script: true,
      exitCode: null,
      filters: noFilters,
    });
    const script = (stdout ?? "").trim();
    if (script === "" || script === "-- This is an empty migration.") return null;
    const stamp = now.toISOString().replace(/\D/g, "").slice(0, 14);
    const folder = `${stamp}_${name}`;
    await mkdir(path.join(dir, folder), { recursive: true });
    await writeFile(path.join(dir, folder, "migration.sql"), `${script}\n`);
    const lockPath = path.join(dir, "migration_lock.toml");
    if ((await readFile(lockPath, "utf8").catch(() => null)) === null) {
      await writeFile(
        lockPath,
        '# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = "postgresql"\n',
      );
    }
    return folder;
  } finally {
    await close();
  }
}
