import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink, type TRPCClient } from "@trpc/client";
import pg from "pg";
import { afterAll, afterEach, beforeAll, inject } from "vitest";
import WebSocket from "ws";
import { attemptFields } from "../server/agents/attempt-fields";
import type { ChainDefinition } from "../server/agents/chains";
import { DEMO_SETUP_CHAIN, demoAgents } from "../server/agents/demo";
import {
  defineAgent,
  RunCancelledError,
  type AgentContext,
  type AgentDefinition,
  type AnyAgentDefinition,
} from "../server/agents/define-agent";
import type { PrismaClient } from "../generated/prisma/client";
import { openDatabase, type Database } from "../server/db";
import { createPulseServer, TRPC_PATH, type PulseServer } from "../server/http-server";
import type { ServerSecurityOverrides } from "../server/http/server-security";
import { createLogger, type Logger } from "../server/logger";
import { Pulse, type PulseOptions } from "../server/pulse";
import type { RedisTarget } from "../server/redis";
import type { AppRouter } from "../server/trpc/root";

/**
 * A database for one test file: an in-memory PGlite, or, when the run has DATABASE_URL, a
 * fresh PostgreSQL database of its own (created here, dropped on close). Migrations run
 * either way, so every run proves they apply.
 */
export async function openTestDatabase(
  kind: "pglite" | "postgres" = inject("databaseUrl") ? "postgres" : "pglite",
): Promise<Database> {
  if (kind === "pglite") return openDatabase({ pgliteDir: "memory://" });
  return (await openTestPostgres()).database;
}

export interface TestPulse {
  pulse: Pulse;
  database: Database;
  http: PulseServer;
  baseUrl: string;
  wsUrl: string;
  prefix: string;
  /** The Redis this Pulse uses: the standalone test Redis, or the test cluster. */
  redis: RedisTarget;
  close(): Promise<void>;
}

export interface TestPulseOptions {
  agents?: AnyAgentDefinition[];
  /** Named chains (default: the demo's setup chain, started for new tenants when its agents are there). */
  chains?: ChainDefinition[];
  /** The chain new tenants start with (default: the demo's; null: none). */
  setupChain?: string | null;
  runWorkers?: boolean;
  database?: Database;
  prefix?: string;
  retention?: Partial<PulseOptions["retention"]>;
  worker?: Partial<PulseOptions["worker"]>;
  attempts?: number;
  /** Edge limits; tests of one limit set it low, everything else keeps the defaults (HTTP call rates lifted). */
  security?: ServerSecurityOverrides;
  /** Token lifetimes and sign-in limits (the per-address limit is lifted unless set: every test client is 127.0.0.1). */
  auth?: Partial<Omit<PulseOptions["auth"], "secret">>;
  externalAgentRoles?: string[];
  /** Titles of external roles, by role. */
  externalAgentTitles?: Record<string, string>;
  /** The bus's settings (how much output a run keeps, for one). */
  bus?: PulseOptions["bus"];
  /** Where Pulse logs; silent unless TEST_LOG_LEVEL says otherwise. */
  logger?: Logger;
  /** The Redis to use (default: `testRedisTarget()`). */
  redis?: RedisTarget;
  /** How worker processes end runs the queue lost or whose external agent went silent. */
  reconcile?: PulseOptions["reconcile"];
  /** The admin API's key and minted tokens' default lifetime (off without a key). */
  admin?: { key?: string; tokenTtlSeconds?: number };
}

/** The test cluster started by the global setup (three masters, one replica each). */
export function testClusterTarget(): RedisTarget {
  const nodes = inject("redisClusterNodes");
  if (!nodes)
    throw new Error(
      "the test cluster runs for the vitest projects `cluster` and `redis-cluster` only (see vitest.config.ts)",
    );
  return {
    cluster: {
      nodes: nodes.split(",").map((node) => {
        const [host = "127.0.0.1", port = "0"] = node.split(":");
        return { host, port: Number(port) };
      }),
    },
  };
}

/**
 * The Redis tests run Pulse on: the standalone test Redis, or the test cluster when the run
 * has PULSE_TEST_REDIS=cluster (to run the suite's Pulse instances on a Redis Cluster).
 */
export function testRedisTarget(): RedisTarget {
  return process.env.PULSE_TEST_REDIS === "cluster" ? testClusterTarget() : { url: inject("redisUrl") };
}

export const TEST_SECRET = new TextEncoder().encode("test-secret-that-is-at-least-32-characters-long");

/** Fast demo agents that never fail by chance: tests decide their own failures. */
export const fastDemoAgents = () => demoAgents({ speed: 0.01, failureRate: 0 });

/** Pulse with its HTTP/WebSocket server on a free loopback port, its own key prefix and database. */
export async function startTestPulse(options: TestPulseOptions = {}): Promise<TestPulse> {
  const database = options.database ?? (await openTestDatabase());
  const prefix = options.prefix ?? `test-${randomUUID().slice(0, 8)}`;
  const redis = options.redis ?? testRedisTarget();
  const logger = options.logger ?? createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
  const pulse = await Pulse.start({
    database,
    redis,
    redisPrefix: prefix,
    logger,
    agents: options.agents ?? fastDemoAgents(),
    chains: options.chains ?? [DEMO_SETUP_CHAIN],
    ...(options.setupChain === null ? {} : { setupChain: options.setupChain ?? DEMO_SETUP_CHAIN.name }),
    runWorkers: options.runWorkers ?? true,
    serveSubscriptions: true,
    retention: { maxAgeMs: 86_400_000, minEvents: 10_000, maxEvents: 100_000, ...options.retention },
    logRetentionDays: 30,
    worker: { concurrency: 4, lockDurationMs: 30_000, stalledIntervalMs: 30_000, ...options.worker },
    attempts: options.attempts ?? 3,
    auth: {
      sessionTtlSeconds: 3600,
      ...options.auth,
      login: { maxPerIp: 1_000_000, ...options.auth?.login },
      secret: TEST_SECRET,
    },
    ...(options.externalAgentRoles ? { externalAgentRoles: options.externalAgentRoles } : {}),
    ...(options.externalAgentTitles ? { externalAgentTitles: options.externalAgentTitles } : {}),
    ...(options.bus ? { bus: options.bus } : {}),
    ...(options.reconcile ? { reconcile: options.reconcile } : {}),
  });
  const http = createPulseServer({
    pulse,
    logger,
    secureCookies: false,
    // Every test client calls from 127.0.0.1 and many share a tenant: the HTTP rates are lifted unless a test sets them.
    security: {
      ...options.security,
      http: { perIpPerSecond: 1_000_000, perTenantPerSecond: 1_000_000, ...options.security?.http },
    },
    // Tests scrape the loopback server; the public port's default (no token, no metrics) has its own test.
    metrics: { public: true },
    ...(options.admin ? { admin: options.admin } : {}),
  });
  await new Promise<void>((resolve) => http.server.listen(0, "127.0.0.1", resolve));
  const { port } = http.server.address() as AddressInfo;
  return {
    pulse,
    database,
    http,
    prefix,
    redis,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}${TRPC_PATH}`,
    async close() {
      await http.close();
      await pulse.close({ force: true });
      if (!options.database) await database.close();
    },
  };
}

export interface TestClient {
  trpc: TRPCClient<AppRouter>;
  ws: ReturnType<typeof createWSClient>;
  close(): Promise<void>;
}

/**
 * A real `@trpc/client` like the browser's: subscriptions over wsLink (token in
 * connectionParams), everything else over HTTP with the bearer token. With `socketToken`,
 * the socket fetches a fresh short-lived token on every (re)connect, as the browser does.
 */
export function connectClient(
  app: TestPulse,
  token: string | (() => string),
  wsOptions: {
    retryDelayMs?: (attempt: number) => number;
    /** Where the socket's token comes from, when not `token` itself. */
    socketToken?: () => Promise<string>;
    onOpen?: () => void;
  } = {},
): TestClient {
  const current = () => (typeof token === "function" ? token() : token);
  const ws = createWSClient({
    url: app.wsUrl,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: async () => ({ token: wsOptions.socketToken ? await wsOptions.socketToken() : current() }),
    retryDelayMs: wsOptions.retryDelayMs ?? (() => 50),
    ...(wsOptions.onOpen ? { onOpen: wsOptions.onOpen } : {}),
  });
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        true: wsLink({ client: ws }),
        false: httpBatchLink({
          url: `${app.baseUrl}${TRPC_PATH}`,
          headers: () => ({ authorization: `Bearer ${current()}` }),
        }),
      }),
    ],
  });
  return { trpc, ws, close: () => ws.close() };
}

/** Registers a tenant through the API and returns its bearer token. */
export async function registerTenant(app: TestPulse, name = `tenant-${randomUUID().slice(0, 6)}`) {
  const anonymous = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `${app.baseUrl}${TRPC_PATH}` })] });
  const result = await anonymous.auth.register.mutate({
    email: `${name}@example.test`,
    password: "correct horse battery",
    tenantName: name,
  });
  return { token: result.token, tenantId: result.user.tenantId, userId: result.user.id, email: result.user.email };
}

/** Resolves when `predicate` holds, polling; fails with `what` after the timeout. */
export async function eventually<T>(
  probe: () => Promise<T> | T,
  predicate: (value: T) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)?.slice(0, 500)}`);
}

/**
 * Resolves with `/healthz`'s answer once it is 200: its probes have a 1 s timeout, which a
 * loaded test machine may miss now and then.
 */
export async function untilHealthy(baseUrl: string, timeoutMs = 30_000): Promise<{ status: number; body: unknown }> {
  const probe = async () => {
    const res = await fetch(`${baseUrl}/healthz`);
    return { status: res.status, body: (await res.json()) as unknown };
  };
  return eventually(probe, (health) => health.status === 200, `${baseUrl}/healthz to answer 200`, timeoutMs);
}

/**
 * A fresh PostgreSQL database of its own and its URL, for tests that share one database
 * between processes (PGlite cannot). Dropped on close.
 */
export async function openTestPostgres(adminUrl = inject("databaseUrl")): Promise<{ database: Database; url: string }> {
  const { url, drop } = await createTestPostgres(adminUrl);
  const database = await openDatabase({ databaseUrl: url, pgliteDir: "" });
  return {
    url,
    database: {
      ...database,
      async close() {
        await database.close();
        await drop();
      },
    },
  };
}

/** An empty PostgreSQL database (not even migrated) and how to drop it, for tests of what happens on a first start. */
export async function createTestPostgres(
  adminUrl = inject("databaseUrl"),
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `pulse_test_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const cleanup = new pg.Client({ connectionString: adminUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}

/** The output a run's current attempt keeps, from its chunks (`RunOutputChunk`) in order of `start`. */
export function keptOutput(run: { attempt: number; outputChunks: { attempt: number; text: string }[] }): string {
  return run.outputChunks
    .filter((chunk) => chunk.attempt === run.attempt)
    .map((chunk) => chunk.text)
    .join("");
}

/** The output a run's current attempt keeps, read from the database (see `keptOutput`). */
export async function storedOutput(db: PrismaClient, runId: string): Promise<string> {
  const run = await db.agentRun.findUniqueOrThrow({
    where: { id: runId },
    select: { attempt: true, outputChunks: { orderBy: { start: "asc" }, select: { attempt: true, text: true } } },
  });
  return keptOutput(run);
}

/**
 * A tenant and its bearer token, created through the auth service without starting the
 * setup chain, so a test sees only the events it causes itself.
 */
export async function createQuietTenant(app: TestPulse, name = `quiet-${randomUUID().slice(0, 6)}`) {
  const { auth } = app.pulse.services;
  const session = await auth.register({
    email: `${name}@example.test`,
    password: "correct horse battery",
    tenantName: name,
  });
  return {
    token: await auth.issueSessionToken(session),
    tenantId: session.tenantId,
    userId: session.userId,
    email: session.email,
    session,
  };
}

/**
 * An agent a test drives by hand: the running attempt publishes one `agent:progress`
 * ("tick N", progress N) per tick granted with `tick()`, and ends when told to by
 * `finish()` (a log line, then completed) or `fail()`. Cancellation aborts its wait.
 */
export class AgentRemote {
  readonly definition: AgentDefinition;
  /** Attempt numbers of every run this agent started, in order. */
  readonly attempts: number[] = [];
  private granted = 0;
  private ending: { kind: "finish" } | { kind: "fail"; message: string } | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(role: string, options: { concurrency?: number } = {}) {
    this.definition = defineAgent({
      role,
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      run: (ctx) => this.run(ctx),
    });
  }

  get role(): string {
    return this.definition.role;
  }

  /** Lets the running attempt publish `count` more progress events. */
  tick(count = 1): void {
    this.granted += count;
    this.wakeAll();
  }

  /** Lets the running attempt log "finished" and complete once its ticks are out. */
  finish(): void {
    this.ending = { kind: "finish" };
    this.wakeAll();
  }

  fail(message: string): void {
    this.ending = { kind: "fail", message };
    this.wakeAll();
  }

  /** Forgets granted ticks and the ending, before the next run. */
  reset(): void {
    this.granted = 0;
    this.ending = null;
  }

  private wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }

  private async run(ctx: AgentContext): Promise<void> {
    this.attempts.push(ctx.attempt);
    let sent = 0;
    for (;;) {
      while (sent < this.granted) {
        sent += 1;
        await ctx.progress(Math.min(99, sent), `tick ${sent}`);
      }
      if (this.ending?.kind === "finish") {
        await ctx.log("info", "finished");
        return;
      }
      if (this.ending?.kind === "fail") throw new Error(this.ending.message);
      // A cancellation that arrived while the last tick was being published has already fired.
      if (ctx.signal.aborted) throw new RunCancelledError();
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          ctx.signal.removeEventListener("abort", wake);
          resolve();
        };
        this.waiters.add(wake);
        ctx.signal.addEventListener("abort", wake, { once: true });
      });
      if (ctx.signal.aborted) throw new RunCancelledError();
    }
  }
}

/** What a tracked subscription delivers: the stream id and the item. */
export interface TrackedItem {
  id: string;
  data: { type: string } & Record<string, any>;
}

export interface Collector {
  items: TrackedItem[];
  errors: unknown[];
  /** Items that are events (neither snapshot nor resync). */
  events(): TrackedItem[];
  unsubscribe(): void;
}

/**
 * Subscribes with a real client and keeps everything delivered, for later comparison.
 * Pass the procedure's `subscribe`, e.g. `collect((h) => client.trpc.agent.onStatus.subscribe({}, h))`.
 */
export function collect(
  subscribe: (handlers: { onData: (value: any) => void; onError: (error: unknown) => void }) => { unsubscribe(): void },
): Collector {
  const items: TrackedItem[] = [];
  const errors: unknown[] = [];
  const subscription = subscribe({
    onData: (value) => items.push(value as TrackedItem),
    onError: (error) => errors.push(error),
  });
  return {
    items,
    errors,
    events: () => items.filter((i) => i.data.type !== "snapshot" && i.data.type !== "resync"),
    unsubscribe: () => subscription.unsubscribe(),
  };
}

/**
 * A quiet tenant's run of an external `role` (no worker holds it), made active by a publish
 * here, and a client following it from its snapshot on: for tests that publish the run's
 * events themselves, as other processes would.
 */
export async function followedActiveRun(app: TestPulse, role: string) {
  const tenant = await createQuietTenant(app);
  const { db, bus, runs } = app.pulse.services;
  const started = await runs.start(tenant.tenantId, role);
  const row = await db.agentRun.findUniqueOrThrow({ where: { id: started.id } });
  await bus.publish({ ...attemptFields(row, 1), type: "agent:active", startedAt: new Date().toISOString() });
  const client = connectClient(app, tenant.token);
  const seen = collect((handlers) => client.trpc.agent.onStatus.subscribe({ runId: started.id }, handlers));
  await eventually(
    () => seen.items.length,
    (n) => n > 0,
    "the snapshot",
  );
  return { tenant, runId: started.id, row, client, seen };
}

/** True when a delivered item is the progress event "tick N". */
export const isTick = (item: TrackedItem, n: number) =>
  item.data.type === "agent:progress" && item.data.message === `tick ${n}`;

/** The clients and subscriptions a test file opens, to close after each test. */
export class OpenConnections {
  readonly clients: TestClient[] = [];
  readonly collectors: Collector[] = [];

  async closeAll(): Promise<void> {
    for (const c of this.collectors.splice(0)) c.unsubscribe();
    await Promise.all(this.clients.splice(0).map((c) => c.close()));
  }
}

/**
 * One Pulse for a whole test file, with a remote-controlled agent: registers the file's
 * hooks (start once; after each test let the agent's run end and close what the test
 * opened; close at the end) and hands the started Pulse to `started`.
 */
export function useTickerPulse(
  ticker: AgentRemote,
  options: TestPulseOptions,
  started: (app: TestPulse) => void,
): OpenConnections {
  const open = new OpenConnections();
  let app: TestPulse | undefined;
  beforeAll(async () => {
    app = await startTestPulse(options);
    started(app);
  });
  afterEach(async () => {
    // Let a run that a failed test left behind end, so the next test can start the role.
    ticker.finish();
    await open.closeAll();
    await new Promise((r) => setTimeout(r, 50));
    ticker.reset();
  });
  afterAll(async () => {
    await app?.close();
  });
  return open;
}
