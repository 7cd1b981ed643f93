import { Prisma } from "../../generated/prisma/client";
import type { SqlClient } from "../sql";

/** What a token's check needs of its session row. */
export interface SessionRow {
  id: string;
  userId: string;
  tenantId: string;
  expiresAt: Date;
}

/** Session ids one query reads at most. */
const BATCH = 1_000;

/**
 * The live sessions among `ids`. One array parameter, not a parameter per id (as Prisma's
 * `in` sends), so the statement's text, and its prepared plan, is the same for every batch.
 */
const liveSessions = (ids: string[], now: Date) => Prisma.sql`
  SELECT "id", "userId", "tenantId", round(extract(epoch FROM "expiresAt") * 1000)::float8 AS "expiresAtMs"
  FROM "Session" WHERE "id" = ANY(${ids}::text[]) AND "revokedAt" IS NULL AND "expiresAt" > ${now}`;

interface Waiter {
  resolve: (row: SessionRow | null) => void;
  reject: (error: unknown) => void;
}

/**
 * Live session rows (neither revoked nor expired) by id, those asked for in one turn of the
 * event loop read in one query: a burst of connections (a deploy's dashboards reconnecting
 * at once) costs a few reads instead of one each, and a connection pool's worth of them no
 * longer queues every other query behind it. Read through `SqlClient`, as the other
 * statements every connection costs are (the snapshot), not through Prisma's client.
 */
export class SessionLookups {
  private pending = new Map<string, Waiter[]>();

  constructor(private readonly sql: SqlClient) {}

  /** The session, or null when it was revoked, has expired or never existed. */
  find(sessionId: string): Promise<SessionRow | null> {
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) setImmediate(() => void this.flush());
      const waiters = this.pending.get(sessionId);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(sessionId, [{ resolve, reject }]);
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    const ids = [...batch.keys()];
    for (let i = 0; i < ids.length; i += BATCH) {
      const chunk = ids.slice(i, i + BATCH);
      try {
        const rows = await this.sql.query<Omit<SessionRow, "expiresAt"> & { expiresAtMs: number }>(
          liveSessions(chunk, new Date()),
        );
        const byId = new Map(
          rows.map(({ expiresAtMs, ...row }) => [row.id, { ...row, expiresAt: new Date(expiresAtMs) }]),
        );
        for (const id of chunk) for (const waiter of batch.get(id)!) waiter.resolve(byId.get(id) ?? null);
      } catch (error) {
        for (const id of chunk) for (const waiter of batch.get(id)!) waiter.reject(error);
      }
    }
  }
}
