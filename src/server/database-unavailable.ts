/**
 * Prisma's codes for "the database cannot be reached right now": can't reach the server,
 * timed out, closed the connection, no free connection in the pool.
 *
 * @see https://www.prisma.io/docs/orm/reference/error-reference#common
 */
const PRISMA_UNAVAILABLE = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
/** Socket errors of a connection that went away. */
const SOCKET_UNAVAILABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
/** Driver adapter error kinds (`DriverAdapterError.cause.kind`, also its message) of a connection that went away. */
const ADAPTER_UNAVAILABLE = new Set([
  "ConnectionClosed",
  "DatabaseNotReachable",
  "SocketTimeout",
  "TooManyConnections",
]);
/** PostgreSQL's SQLSTATEs for a server shutting down or not accepting connections yet. */
const POSTGRES_UNAVAILABLE = new Set(["57P01", "57P02", "57P03", "53300"]);

/**
 * True when an error says the database is unreachable for now (rather than that a query was
 * wrong), so the caller may wait and retry, and a client gets a retryable answer.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (
    let e: unknown = error, depth = 0;
    e && typeof e === "object" && depth < 4;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") {
      if (
        PRISMA_UNAVAILABLE.has(code) ||
        SOCKET_UNAVAILABLE.has(code) ||
        POSTGRES_UNAVAILABLE.has(code) ||
        code.startsWith("08")
      )
        return true;
    }
    const kind = (e as { kind?: unknown }).kind;
    if (typeof kind === "string" && ADAPTER_UNAVAILABLE.has(kind)) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === "string" && ADAPTER_UNAVAILABLE.has(message)) return true;
    // node-postgres reports a connection that dropped mid-query only in words, and Prisma's
    // raw queries wrap it in a P2010 whose message carries those words; its pool says in words
    // too that no connection came free within its wait (a burst of reads, a database gone).
    if (
      typeof message === "string" &&
      /Connection terminated|connection timeout|timeout exceeded when trying to connect|Can't reach database server|Server has closed the connection|connection error and is not queryable/i.test(
        message,
      )
    )
      return true;
  }
  return false;
}

/** Thrown when the database stayed unreachable for longer than a caller was willing to wait. */
export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super("the database is unavailable right now; try again shortly", { cause });
    this.name = "DatabaseUnavailableError";
  }
}

/**
 * Runs `task`, retrying with backoff while the database is unreachable, for at most
 * `maxWaitMs`; other errors pass through at once.
 */
export async function whileDatabaseReturns<T>(
  task: () => Promise<T>,
  maxWaitMs: number,
  signal?: AbortSignal,
): Promise<T> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await task();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      const waited = Date.now() - started;
      if (waited >= maxWaitMs || signal?.aborted) throw new DatabaseUnavailableError(error);
      await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1_000, maxWaitMs - waited)));
    }
  }
}
