import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import type { Database, PrismaClient } from "../../server/db";
import { TcpBalancer } from "../chaos/tcp-balancer";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  openTestDatabase,
  OpenConnections,
  startTestPulse,
  type Collector,
  type TestPulse,
  type TestPulseOptions,
} from "../harness";
import { errorCode, httpClient, sleep } from "./security-kit";

/**
 * Revocation reaches open WebSockets by a message on Redis, not by re-reading every session
 * on a timer: the database is read for open connections only on a slow rolling safety check
 * and when the revocation channel reconnects.
 */

const open = new OpenConnections();
/** What the file starts, closed at its end in reverse order. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await open.closeAll();
});
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function pulse(options: TestPulseOptions): Promise<TestPulse> {
  const app = await startTestPulse(options);
  cleanups.push(() => app.close());
  return app;
}

/** `token`'s subscription on `app`, once its snapshot arrived. */
async function watching(app: TestPulse, token: string): Promise<Collector> {
  const c = connectClient(app, token);
  open.clients.push(c);
  const live = collect((h) => c.trpc.agent.onStatus.subscribe({}, h));
  open.collectors.push(live);
  await eventually(
    () => live.items.length,
    (n) => n === 1,
    "the snapshot",
  );
  return live;
}

const ended = (live: Collector) =>
  eventually(
    () => live.errors.length,
    (n) => n === 1,
    "the subscription to end",
  );

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
  it("is not a query of every session every few seconds: 200 idle connections over 10 s read each session at most once", async () => {
    const reads = new SessionReads();
    const database = await openTestDatabase();
    cleanups.push(() => database.close());
    const app = await pulse({
      runWorkers: false,
      database: reads.counting(database),
      security: { ws: { perIp: 1_000, perUser: 1_000, perTenant: 1_000 } },
    });
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
    await eventually(
      () => open.collectors.filter((l) => l.items.length === 1).length,
      (n) => n === CONNECTIONS,
      "every snapshot",
    );
    await eventually(
      () => app.http.connections.size,
      (n) => n === CONNECTIONS,
      "every connection registered",
    );

    reads.reset();
    await sleep(10_000);
    const { queries, rows } = reads;
    console.log(`session reads of ${CONNECTIONS} idle connections over 10 s: ${queries} queries, ${rows} rows`);
    expect(open.collectors.every((l) => l.errors.length === 0)).toBe(true);
    // Before revocation by message: a query every 2 s naming every session (5 queries, 1000 rows).
    // Now the safety round reads each connection once a minute: at most one read falls in here.
    expect(queries).toBeLessThanOrEqual(1);
    expect(rows).toBeLessThanOrEqual(CONNECTIONS);
  });
});

describe("a revocation on one process", () => {
  /** No safety check within a test: whatever ends a socket here is a message, or the resubscribe. */
  const NO_SAFETY_CHECK = { sessionCheckIntervalMs: 3_600_000 };
  let a: TestPulse;
  let b: TestPulse;
  /** B reaches Redis through this, so a test can cut B off while A goes on. */
  let bRedis: TcpBalancer;

  beforeAll(async () => {
    a = await pulse({ runWorkers: false, security: NO_SAFETY_CHECK });
    bRedis = await new TcpBalancer({ backends: [Number(new URL(inject("redisUrl")).port)] }).start();
    cleanups.push(() => bRedis.close());
    b = await pulse({
      runWorkers: false,
      database: a.database,
      prefix: a.prefix,
      redis: { url: `redis://127.0.0.1:${bRedis.port}` },
      security: NO_SAFETY_CHECK,
    });
  });

  it("ends that session's sockets on another process at once, and no other session's", async () => {
    const tenant = await createQuietTenant(a);
    const { auth } = a.pulse.services;
    const other = await auth.issueSessionToken(await auth.openSession(tenant.session));
    const leaving = await watching(b, tenant.token);
    const staying = await watching(b, other);
    await httpClient(a, tenant.token).auth.logout.mutate();
    await ended(leaving);
    expect(errorCode(leaving.errors[0])).toBe("UNAUTHORIZED");
    expect((leaving.errors[0] as Error).message).toBe("your session has ended: sign in again");
    expect(staying.errors).toEqual([]);
    await eventually(
      () => b.http.connections.connectionsOfUser(tenant.userId),
      (n) => n === 1,
      "the ended socket to close",
    );
    expect(staying.errors).toEqual([]);
  });

  it("ends every socket of a removed user on every process", async () => {
    const tenant = await createQuietTenant(a);
    const onA = await watching(a, tenant.token);
    const onB = await watching(b, tenant.token);
    await a.pulse.services.auth.removeUser(tenant.userId);
    await Promise.all([ended(onA), ended(onB)]);
    expect([onA, onB].map((l) => errorCode(l.errors[0]))).toEqual(["UNAUTHORIZED", "UNAUTHORIZED"]);
  });

  it("stopping a share link ends its viewers on every process, and no other link's", async () => {
    const tenant = await createQuietTenant(a);
    const { id: runId } = await a.pulse.services.runs.start(tenant.tenantId, "client-researcher");
    const stopped = await a.pulse.services.shares.create(tenant.session, runId, 600);
    const kept = await a.pulse.services.shares.create(tenant.session, runId, 600);
    const view = async (app: TestPulse, token: string) => {
      const c = connectClient(app, token);
      open.clients.push(c);
      const live = collect((h) => c.trpc.share.onRun.subscribe({}, h));
      open.collectors.push(live);
      await eventually(
        () => live.items.length,
        (n) => n === 1,
        "the viewer's snapshot",
      );
      return live;
    };
    const viewers = [await view(a, stopped.token), await view(b, stopped.token)];
    const other = await view(b, kept.token);
    await httpClient(a, tenant.token).share.revoke.mutate({ shareId: stopped.shareId });
    await Promise.all(viewers.map(ended));
    for (const viewer of viewers)
      expect((viewer.errors[0] as Error).message).toBe("this share link was revoked or has expired");
    expect(other.errors).toEqual([]);
  });

  it("published while another process was cut off from Redis ends that process's sockets once it is back", async () => {
    const tenant = await createQuietTenant(a);
    const onA = await watching(a, tenant.token);
    const onB = await watching(b, tenant.token);
    bRedis.cut();
    await httpClient(a, tenant.token).auth.logout.mutate();
    // A heard the message, so it was published; B, cut off, cannot have.
    await ended(onA);
    expect(onB.errors).toEqual([]);
    bRedis.restore();
    await ended(onB);
    expect(errorCode(onB.errors[0])).toBe("UNAUTHORIZED");
  });

  it("lost with the subscriber's connection (CLIENT KILL) is caught when it resubscribes", async () => {
    const tenant = await createQuietTenant(a);
    const live = await watching(a, tenant.token);
    // Revoked in the database without a message: only the re-check after resubscribing can find it.
    await a.pulse.services.db.session.updateMany({
      where: { id: tenant.session.sessionId },
      data: { revokedAt: new Date() },
    });
    const admin = new Redis(inject("redisUrl"));
    try {
      // Both processes' subscribers share the prefix's connection name: both are killed, both come back.
      const listed = async () =>
        ((await admin.client("LIST")) as string)
          .split("\n")
          .filter((line) => line.includes(` name=${a.prefix}:revocations `));
      const subscribers = await eventually(listed, (lines) => lines.length === 2, "both processes' subscribers");
      for (const line of subscribers) await admin.client("KILL", "ID", line.match(/^id=(\d+)/)![1]!);
    } finally {
      admin.disconnect();
    }
    await ended(live);
    expect(errorCode(live.errors[0])).toBe("UNAUTHORIZED");
  });
});

describe("the safety check", () => {
  it("ends the sockets of a user deleted in the database directly, where no message tells", async () => {
    const app = await pulse({ runWorkers: false, security: { sessionCheckIntervalMs: 500 } });
    const tenant = await createQuietTenant(app);
    const live = await watching(app, tenant.token);
    await app.pulse.services.db.user.delete({ where: { id: tenant.userId } });
    await ended(live);
    expect(errorCode(live.errors[0])).toBe("UNAUTHORIZED");
  });
});
