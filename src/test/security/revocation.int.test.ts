import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Database, PrismaClient } from "../../server/db";
import { collect, connectClient, createQuietTenant, eventually, openTestDatabase, OpenConnections, startTestPulse, type TestPulse } from "../harness";
import { sleep } from "./security-kit";

/**
 * Revocation reaches open WebSockets by a message on Redis, not by re-reading every session
 * on a timer: the database is read for open connections only on a slow rolling safety check
 * and when the revocation channel reconnects.
 */

const open = new OpenConnections();
const started: TestPulse[] = [];
afterEach(async () => {
  await open.closeAll();
});
afterAll(async () => {
  for (const app of started.splice(0).reverse()) await app.close();
});

/** Session and share-link look-ups a database answers: queries, and the rows they name. */
class SessionReads {
  queries = 0;
  rows = 0;

  /** `database` with every Prisma operation on sessions and share links counted here. */
  counting(database: Database): Database {
    const count = (args: unknown) => {
      this.queries += 1;
      const ids = (args as { where?: { id?: { in?: unknown[] } } }).where?.id?.in;
      this.rows += Array.isArray(ids) ? ids.length : 1;
    };
    const prisma = database.prisma.$extends({
      query: {
        session: { $allOperations: ({ args, query }) => (count(args), query(args)) },
        shareLink: { $allOperations: ({ args, query }) => (count(args), query(args)) },
      },
    });
    return { ...database, prisma: prisma as unknown as PrismaClient };
  }

  reset(): void {
    this.queries = 0;
    this.rows = 0;
  }
}

describe("the database budget of open connections", () => {
  it("is not a query of every session every few seconds: 200 idle connections over 10 s read at most a rolling slice", async () => {
    const reads = new SessionReads();
    const database = await openTestDatabase();
    const app = await startTestPulse({
      runWorkers: false,
      database: reads.counting(database),
      security: { ws: { perIp: 1_000, perUser: 1_000, perTenant: 1_000 } },
    });
    started.push(app);
    const tenant = await createQuietTenant(app);
    const { auth } = app.pulse.services;
    const CONNECTIONS = 200;
    for (let i = 0; i < CONNECTIONS; i++) {
      // A session each, as 200 browsers would have.
      const token = await auth.issueSessionToken(await auth.openSession(tenant.session));
      const c = connectClient(app, token);
      open.clients.push(c);
      open.collectors.push(collect((h) => c.trpc.agent.onStatus.subscribe({}, h)));
    }
    await eventually(() => open.collectors.filter((l) => l.items.length === 1).length, (n) => n === CONNECTIONS, "every snapshot");
    await eventually(() => app.http.connections.size, (n) => n === CONNECTIONS, "every connection registered");

    reads.reset();
    await sleep(10_000);
    const { queries, rows } = reads;
    console.log(`session reads of ${CONNECTIONS} idle connections over 10 s: ${queries} queries, ${rows} rows`);
    expect(open.collectors.every((l) => l.errors.length === 0)).toBe(true);
    // Before revocation by message: a query every 2 s naming every session (5 queries, 1000 rows).
    expect(queries).toBeLessThanOrEqual(2);
    expect(rows).toBeLessThanOrEqual(Math.ceil(CONNECTIONS / 4));
  });
});
