import { expect } from "vitest";
import type { RedisClient } from "../../server/redis";
import type { PrismaClient } from "../../server/db";
import type { StreamEntry } from "../../server/events/event-stream";
import type { SnapshotSource } from "../../server/events/snapshot";
import { compareStreamIds } from "../../shared/stream-id";
import { createQuietTenant, startTestPulse, type TestPulse, type TestPulseOptions } from "../harness";
import type { ChaosCluster } from "./chaos-cluster";
import type { ChaosLog, ScenarioFigures } from "./chaos-log";
import { FEED_ROLES } from "./feed-publisher";
import { feedAccepts, RecorderClient, type RecorderFeed } from "./recorder-client";
import { auditAgainstStream, auditState, readTenantStream, type StreamTap } from "./stream-audit";
import { TcpBalancer } from "./tcp-balancer";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Progress lines for a scenario being debugged (`CHAOS_TRACE=1`). */
export function trace(...parts: unknown[]): void {
  if (process.env.CHAOS_TRACE) console.log(`[chaos ${new Date().toISOString().slice(11, 23)}]`, ...parts);
}

/** A tenant the scenario's clients watch: its id and a session token of its user. */
export interface WatchedTenant {
  tenantId: string;
  token: string;
}

/**
 * Recorders spread over tenants the way dashboards are: most watch every agent of the
 * tenant, some one role, one in eight the context file.
 */
export function startRecorders(tenants: readonly WatchedTenant[], perTenant: number, wsUrl: string): RecorderClient[] {
  const recorders: RecorderClient[] = [];
  for (const tenant of tenants) {
    for (let i = 0; i < perTenant; i++) {
      const feed: RecorderFeed =
        i % 8 === 7
          ? { kind: "context" }
          : i % 4 === 3
            ? { kind: "agent", agentRole: FEED_ROLES[0] }
            : { kind: "agent" };
      recorders.push(
        new RecorderClient({ wsUrl, token: tenant.token, feed, label: `${tenant.tenantId.slice(0, 6)}#${i}` }).start(),
      );
    }
  }
  return recorders;
}

/** Resolves when `check` holds; fails with `what` (and the last detail) after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  detail?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `: ${detail()}` : ""}`);
}

/**
 * Time from a fault until every agent recorder it disconnected has reconnected and
 * received again; recorders it did not touch count from their next item.
 */
export async function recoveryAfter(
  faultAt: number,
  recorders: readonly RecorderClient[],
  timeoutMs: number,
): Promise<number> {
  const watched = recorders.filter((r) => r.feed.kind === "agent" && !r.feed.agentRole);
  await until(
    () =>
      watched.every(
        (r) =>
          r.lastItemAt > faultAt &&
          (r.lastCloseAt < faultAt || (r.lastOpenAt > r.lastCloseAt && r.lastItemAt > r.lastOpenAt)),
      ),
    "every client to receive again after the fault",
    timeoutMs,
    () => {
      const behind = watched.filter(
        (r) =>
          !(
            r.lastItemAt > faultAt &&
            (r.lastCloseAt < faultAt || (r.lastOpenAt > r.lastCloseAt && r.lastItemAt > r.lastOpenAt))
          ),
      );
      return `${behind.length} behind, e.g. ${behind
        .slice(0, 3)
        .map((r) => `${r.label} closes=${r.tally.closes} opens=${r.tally.opens} errors=${r.errorMessages.join("; ")}`)
        .join(", ")}`;
    },
  );
  return Date.now() - faultAt;
}

/** The newest entry of the tenant's stream that each recorder's feed accepts. */
async function newestAccepted(
  redis: RedisClient,
  prefix: string,
  tenantId: string,
  recorders: readonly RecorderClient[],
) {
  const entries = await readTenantStream(redis, prefix, tenantId);
  return {
    entries,
    newest: recorders.map((r) => [...entries].reverse().find((e) => feedAccepts(r.feed, e.event))?.id ?? null),
  };
}

/** Waits until every recorder received the newest entry its feed accepts (the publishers have stopped). */
export async function waitUntilCaughtUp(
  redis: RedisClient,
  prefix: string,
  byTenant: ReadonlyMap<string, RecorderClient[]>,
  timeoutMs: number,
): Promise<void> {
  const targets: { recorder: RecorderClient; id: string }[] = [];
  for (const [tenantId, recorders] of byTenant) {
    const { newest } = await newestAccepted(redis, prefix, tenantId, recorders);
    recorders.forEach((recorder, i) => {
      const id = newest[i];
      if (id) targets.push({ recorder, id });
    });
  }
  await until(
    () =>
      targets.every(
        ({ recorder, id }) =>
          recorder.hasEnded || (recorder.lastId !== null && compareStreamIds(recorder.lastId, id) >= 0),
      ),
    "every client to catch up with the stream",
    timeoutMs,
    () => {
      const behind = targets.filter(
        ({ recorder, id }) => !(recorder.lastId !== null && compareStreamIds(recorder.lastId, id) >= 0),
      );
      return `${behind.length} behind, e.g. ${behind
        .slice(0, 3)
        .map(({ recorder, id }) => `${recorder.label} at ${recorder.lastId} wants ${id}`)
        .join(", ")}`;
    },
  );
}

/**
 * Asserts that the named counts of an audit are all zero, reported side by side so a
 * failure shows every count at once.
 */
export function expectNone(totals: AuditTotals, counts: readonly NumericCount[]): void {
  expect(Object.fromEntries(counts.map((k) => [k, totals[k]]))).toEqual(Object.fromEntries(counts.map((k) => [k, 0])));
}

type NumericCount = { [K in keyof AuditTotals]: AuditTotals[K] extends number ? K : never }[keyof AuditTotals];

/** What all recorders of a scenario found, added up. */
export interface AuditTotals {
  clients: number;
  deliveries: number;
  lost: number;
  extra: number;
  mismatched: number;
  unverifiable: number;
  seqGaps: number;
  duplicated: number;
  reordered: number;
  resyncs: number;
  attemptMixes: number;
  errors: number;
  /** Clients whose final state differs from the database, with the first differences. */
  stateDiffs: string[];
}

/**
 * Audits every recorder against its tenant's stream (`verifiableFrom` per tenant when
 * older entries are gone) and its final state against the database (retrying for a while:
 * progress reaches the database a moment after it reaches clients).
 */
export async function auditRecorders(
  options: {
    redis: RedisClient;
    prefix: string;
    source: SnapshotSource;
    /** Every entry the stream held (a `StreamTap`), when it may have lost some since; else the stream as it is now. */
    entries?: (tenantId: string) => StreamEntry[];
    /** The first id of each stream the tenant had (`StreamTap.generations`), when Redis may have lost one. */
    generations?: (tenantId: string) => string[];
    verifiableFrom?: (tenantId: string) => Promise<string | null> | string | null;
  },
  byTenant: ReadonlyMap<string, RecorderClient[]>,
): Promise<AuditTotals> {
  const totals: AuditTotals = {
    clients: 0,
    deliveries: 0,
    lost: 0,
    extra: 0,
    mismatched: 0,
    unverifiable: 0,
    seqGaps: 0,
    duplicated: 0,
    reordered: 0,
    resyncs: 0,
    attemptMixes: 0,
    errors: 0,
    stateDiffs: [],
  };
  const pending: { recorder: RecorderClient; tenantId: string }[] = [];
  for (const [tenantId, recorders] of byTenant) {
    const entries = options.entries?.(tenantId) ?? (await readTenantStream(options.redis, options.prefix, tenantId));
    const from = (await options.verifiableFrom?.(tenantId)) ?? null;
    for (const recorder of recorders) {
      const audit = auditAgainstStream(recorder, entries, from, options.generations?.(tenantId));
      if (audit.lost > 0 || audit.extra > 0)
        trace(
          "audit",
          recorder.label,
          audit,
          recorder.segments.map((g) => `${g.startId}..${g.lastId ?? ""} ×${g.count}`),
        );
      if (recorder.seqGapSamples.length > 0) {
        const runIds = recorder.seqGapSamples.flatMap((s) => s.match(/[0-9a-f-]{36}/) ?? []);
        const rows = await options.source.db.agentRun.findMany({
          where: { id: { in: runIds } },
          select: {
            id: true,
            agentRole: true,
            status: true,
            attempt: true,
            seq: true,
            queuedAt: true,
            startedAt: true,
            completedAt: true,
            failedAt: true,
            updatedAt: true,
            chainId: true,
          },
        });
        trace("seq gaps", recorder.label, recorder.seqGapSamples, rows);
      }
      totals.clients += 1;
      totals.deliveries += recorder.tally.events;
      totals.lost += audit.lost;
      totals.extra += audit.extra;
      totals.mismatched += audit.mismatched;
      totals.unverifiable += audit.unverifiable;
      totals.seqGaps += recorder.tally.seqGaps;
      totals.duplicated += recorder.tally.duplicated;
      totals.reordered += recorder.tally.reordered;
      totals.resyncs += recorder.tally.resyncs;
      totals.attemptMixes += recorder.tally.attemptMixes;
      totals.errors += recorder.tally.errors;
      pending.push({ recorder, tenantId });
    }
  }
  // Progress reaches the database a moment after it reaches clients: differences get a few seconds to settle.
  const deadline = Date.now() + 5_000;
  let differing: { label: string; diffs: string[] }[];
  do {
    differing = [];
    for (const { recorder, tenantId } of pending) {
      const diffs = await auditState(recorder, options.source, tenantId);
      if (diffs.length > 0) differing.push({ label: recorder.label, diffs });
    }
    if (differing.length === 0) break;
    await sleep(250);
  } while (Date.now() < deadline);
  totals.stateDiffs = differing.slice(0, 10).map((d) => `${d.label}: ${d.diffs.slice(0, 2).join(" | ")}`);
  return totals;
}

/** What a scenario's end found: the recorders' audit and the runs left running. */
export interface ScenarioAudit {
  totals: AuditTotals;
  stuck: Awaited<ReturnType<typeof stuckRuns>>;
}

/** A scenario's figures row without what `auditScenario` fills in from the audit (any of which it may still set). */
export type ScenarioRow = Omit<ScenarioFigures, "lost" | "duplicated" | "reordered" | "stuckRuns" | "resyncs"> &
  Partial<ScenarioFigures>;

/**
 * How a scenario on a `ChaosCluster` ends: its recorders audited against the streams (the
 * tap's copy when the scenario may lose entries) and the database, its runs checked for any
 * left running, the recorders closed, its figures row recorded (lost counts seq gaps too),
 * and then asserted: no publish failed, no run stuck, every client's state as the
 * database's, and each of `none` zero. The row is recorded before anything is asserted, so
 * a failing run still shows its figures.
 */
export async function auditScenario(options: {
  cluster: Pick<ChaosCluster, "inspector" | "prefix" | "publisher" | "database">;
  recorders: ReadonlyMap<string, RecorderClient[]>;
  tap?: StreamTap;
  log: ChaosLog;
  /** The row; `audit` holds the totals and stuck runs for figures of its own (`observed`). */
  row(audit: ScenarioAudit): ScenarioRow;
  none: readonly NumericCount[];
  /** The test publisher's failures, when the scenario has one (none may fail). */
  publisherFailures?: readonly string[];
}): Promise<ScenarioAudit> {
  const { cluster, recorders, tap } = options;
  const totals = await auditRecorders(
    {
      redis: cluster.inspector,
      prefix: cluster.prefix,
      source: cluster.publisher.services,
      ...(tap ? { entries: (t: string) => tap.entries(t), generations: (t: string) => tap.generations(t) } : {}),
    },
    recorders,
  );
  const stuck = await stuckRuns(cluster.database.prisma, [...recorders.keys()]);
  const audit = { totals, stuck };
  trace("audited", totals, { stuck });
  await Promise.all([...recorders.values()].flat().map((r) => r.close()));
  options.log.record({
    lost: totals.lost + totals.seqGaps,
    duplicated: totals.duplicated,
    reordered: totals.reordered,
    stuckRuns: stuck.length,
    resyncs: totals.resyncs,
    ...options.row(audit),
  });
  if (options.publisherFailures) expect(options.publisherFailures).toEqual([]);
  expect(stuck).toEqual([]);
  expect(totals.stateDiffs).toEqual([]);
  expectNone(totals, options.none);
  return audit;
}

/** Runs of these tenants still queued or active: after a scenario ends, each one is stuck. */
export async function stuckRuns(
  db: PrismaClient,
  tenantIds: readonly string[],
): Promise<{ id: string; status: string; agentRole: string }[]> {
  return db.agentRun.findMany({
    where: { tenantId: { in: [...tenantIds] }, status: { in: ["queued", "active"] } },
    select: { id: true, status: true, agentRole: true },
  });
}

/** Recorders grouped by the tenant they watch. */
export function byTenant(
  tenants: readonly WatchedTenant[],
  recorders: readonly RecorderClient[],
): Map<string, RecorderClient[]> {
  const map = new Map<string, RecorderClient[]>(tenants.map((t) => [t.tenantId, []]));
  for (const recorder of recorders) {
    const tenant = tenants.find((t) => t.token === recorder.options.token);
    if (tenant) map.get(tenant.tenantId)!.push(recorder);
  }
  return map;
}

/** A test Pulse in this process, reached through a balancer the test can cut, stall or reset. */
export interface InProcessPulse {
  app: TestPulse;
  balancer: TcpBalancer;
  /** The balancer's WebSocket URL (what clients use). */
  wsUrl: string;
  tenant(): Promise<WatchedTenant>;
  close(): Promise<void>;
}

/**
 * For scenarios that need one server's insides (a slowed replay, heap after GC, its
 * timers): Pulse in the test process with fleet-sized caps (every client is 127.0.0.1),
 * the publisher's roles, and a TCP balancer in front.
 */
export async function startInProcessPulse(options: TestPulseOptions = {}): Promise<InProcessPulse> {
  const app = await startTestPulse({
    runWorkers: false,
    externalAgentRoles: [...FEED_ROLES],
    ...options,
    security: {
      ...options.security,
      ws: {
        perIp: 100_000,
        perUser: 100_000,
        perTenant: 1_000_000,
        messagesPerSecond: 10_000,
        ...options.security?.ws,
      },
    },
  });
  const balancer = await new TcpBalancer({ backends: [Number(new URL(app.baseUrl).port)] }).start();
  return {
    app,
    balancer,
    wsUrl: `ws://127.0.0.1:${balancer.port}/api/trpc`,
    async tenant() {
      const { tenantId, token } = await createQuietTenant(app);
      return { tenantId, token };
    },
    async close() {
      await balancer.close();
      await app.close();
    },
  };
}
