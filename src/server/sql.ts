import type { ArgType, SqlDriverAdapter, SqlQuery, SqlQueryable } from "@prisma/driver-adapter-utils";
import type { Prisma } from "../generated/prisma/client";

/**
 * SQL statements sent straight to Prisma's driver adapter (`@prisma/adapter-pg` or the
 * PGlite one), for the few statements on the hot paths: a running agent's batched steps, log
 * lines and output, the progress flush, and the snapshot every subscriber opens with
 * (`readAgentSnapshot`). `prisma.$queryRaw` sends the same
 * text through the same adapter, pool and prepared statements, but first through the
 * client's request pipeline, which cost more CPU per statement than the database's own
 * work and most of the worker's garbage. Everything else stays with the Prisma client.
 *
 * Statements are written with `Prisma.sql`, as for `$queryRaw`: values are always
 * parameters, never spliced into the text.
 */
export interface SqlClient {
  /** The rows a statement returns, one object per row keyed by column name. */
  query<Row extends Record<string, unknown>>(statement: Prisma.Sql): Promise<Row[]>;
  /** Runs a statement; resolves to the number of rows it changed. */
  execute(statement: Prisma.Sql): Promise<number>;
  /** Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (sql: SqlClient) => Promise<T>): Promise<T>;
}

/** How Prisma's own raw queries type their parameters: by shape only, the SQL's casts say the rest. */
function argType(value: unknown): ArgType {
  const scalar = (v: unknown): ArgType["scalarType"] =>
    v instanceof Date ? "datetime" : v instanceof Uint8Array ? "bytes" : "unknown";
  return Array.isArray(value)
    ? { scalarType: scalar(value.find((v) => v !== null)), arity: "list" }
    : { scalarType: scalar(value), arity: "scalar" };
}

function toQuery(statement: Prisma.Sql): SqlQuery {
  return { sql: statement.text, args: statement.values, argTypes: statement.values.map(argType) };
}

function overQueryable(queryable: SqlQueryable, transaction: SqlClient["transaction"]): SqlClient {
  return {
    async query<Row extends Record<string, unknown>>(statement: Prisma.Sql) {
      const { columnNames, rows } = await queryable.queryRaw(toQuery(statement));
      return rows.map((values) => {
        const row: Record<string, unknown> = {};
        columnNames.forEach((name, i) => (row[name] = values[i]));
        return row as Row;
      });
    },
    execute: (statement) => queryable.executeRaw(toQuery(statement)),
    transaction,
  };
}

const COMMIT = { sql: "COMMIT", args: [], argTypes: [] };
const ROLLBACK = { sql: "ROLLBACK", args: [], argTypes: [] };

/**
 * A `SqlClient` over a connected driver adapter. Transactions end as Prisma's client ends
 * them: adapters that opened theirs with a real BEGIN (`usePhantomQuery: false`) are sent
 * COMMIT or ROLLBACK before the connection goes back to the pool.
 */
export function sqlClient(adapter: SqlDriverAdapter): SqlClient {
  const transaction = async <T>(work: (sql: SqlClient) => Promise<T>): Promise<T> => {
    const tx = await adapter.startTransaction();
    const explicit = !tx.options.usePhantomQuery;
    const nested = () => Promise.reject(new Error("SqlClient: transactions do not nest"));
    let result: T;
    try {
      result = await work(overQueryable(tx, nested));
      if (explicit) await tx.executeRaw(COMMIT);
    } catch (error) {
      if (explicit) await tx.executeRaw(ROLLBACK).catch(() => {});
      await tx.rollback();
      throw error;
    }
    await tx.commit();
    return result;
  };
  return overQueryable(adapter, transaction);
}
