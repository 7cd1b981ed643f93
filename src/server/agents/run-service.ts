import { randomUUID } from "node:crypto";
import type { RedisClient } from "../redis";
import type { SqlClient } from "../sql";
import type { AgentRun, PrismaClient } from "../../generated/prisma/client";
import type { z } from "zod";
import { describeInputIssues, notFound, PulseError } from "../errors";
import { TRANSACTION_LIMITS } from "../db";
import type { EventBus } from "../events/bus";
import { CoalescedReads } from "../events/coalesced-reads";
import { OutputWindows } from "../events/output-windows";
import {
  OUTPUT_WINDOW_CHARS,
  readAgentSnapshot,
  readOutputPage,
  readRunSnapshot,
  toRunView,
  type AgentSnapshot,
  type OutputPage,
  type RunView,
  type SnapshotSource,
} from "../events/snapshot";
import type { ChainDefinition } from "./chains";
import type { RoleConcurrency } from "./define-agent";
import type { AgentQueues } from "./queue";
import { encodeRunCursor, roleNames, runSearchStatement, type RunSearch } from "./run-search";

export interface StartRunOptions {
  chainId?: string;
  /** The named chain the run belongs to (kept on the run, so the chain card knows its roles and title). */
  chainName?: string;
  /** Roles to run after this one, each started when the previous completes. */
  chain?: string[];
  input?: Record<string, unknown>;
}

/**
 * A run as it was created, with the token its creator hands to an external agent to report
 * it over HTTP (null for roles Pulse runs itself, whose runs only their worker reports). The
 * token goes back to the caller of `start` only: it is never stored, published or part of a
 * snapshot.
 */
export type StartedRun = RunView & { reportToken: string | null };

/** Channel on which cancellations reach whichever worker process holds the job. */
export const cancelChannel = (prefix: string) => `${prefix}:cancel`;

/**
 * Starting, cancelling, retrying and reading agent runs for a tenant. Procedures and agents
 * call this; it never trusts a tenant id from input, only the one it is handed.
 */
export class RunService {
  /**
   * A run's snapshot, read once for everyone asking at the same time: a shared run's viewers
   * (or one tenant's page reloads) cost one database read and one output window between them.
   */
  private readonly snapshots = new CoalescedReads<AgentSnapshot | null>();
  /**
   * A tenant's snapshot (optionally one role's), read once for every subscriber asking at the
   * same time: after a deploy, a tenant's reconnecting dashboards share one read instead of
   * each queueing for a database connection of its own.
   */
  private readonly tenantSnapshots = new CoalescedReads<AgentSnapshot>();
  private readonly windows = new OutputWindows<OutputPage>();
  /** What the snapshots read: the database (through Prisma and `SqlClient`) and the tenant's stream. */
  private get source(): SnapshotSource {
    return { db: this.deps.db, sql: this.deps.sql, stream: this.deps.bus.stream };
  }

  constructor(
    private readonly deps: {
      db: PrismaClient;
      /** The same database, for the snapshot every subscriber reads (see `readAgentSnapshot`). */
      sql: SqlClient;
      bus: EventBus;
      queues: AgentQueues;
      /** Publishes cancellations to worker processes. */
      redis: RedisClient;
      prefix: string;
      /** Roles that have an agent; starting anything else is a BAD_REQUEST. */
      roles: () => readonly string[];
      /** The input schema a role declared (`defineAgent({ input })`), if any. */
      inputSchema?: (agentRole: string) => z.ZodType | undefined;
      /** How many runs of a role a tenant may have at once (default: one). */
      concurrency?: (agentRole: string) => RoleConcurrency;
      /** A role's title as pages show it (searching runs matches it too); the role itself by default. */
      roleTitle?: (agentRole: string) => string;
      /** Roles whose agents run outside Pulse and report over HTTP: their runs are not enqueued. */
      externalRoles?: readonly string[];
      /** The deployment's named chains. */
      chains?: readonly ChainDefinition[];
      /** The chain every new tenant starts with, by name. */
      setupChain?: string;
      /** Signs the run-scoped token an external agent reports with (runs of `externalRoles` only). */
      issueReportToken: (grant: { tenantId: string; runId: string }) => Promise<string>;
    },
  ) {}

  /**
   * Creates a run, announces it (`agent:queued`) and enqueues its job. CONFLICT when the
   * role already has a queued or active run for the tenant; the check and the insert hold
   * the tenant's row lock, so two clicks at once make one run.
   */
  async start(tenantId: string, agentRole: string, options: StartRunOptions = {}): Promise<StartedRun> {
    return this.announce((await this.insert(tenantId, agentRole, options, { onlyIfFirst: false }))!, options);
  }

  /**
   * Starts a tenant's setup chain unless the tenant has ever had a run. Whether setup began
   * is read from the database under the tenant's row lock, so a registration, every process
   * starting at once and the start after a crash may all ask: the chain starts exactly once.
   * Null when it had already begun.
   */
  async startSetup(tenantId: string): Promise<{ chainId: string; run: StartedRun } | null> {
    const chain = this.setupChain();
    if (!chain) return null;
    const [first, ...rest] = chain.roles as [string, ...string[]];
    const options = {
      chainId: randomUUID(),
      chainName: chain.name,
      chain: rest,
      input: await this.chainInput(tenantId, chain),
    };
    const run = await this.insert(tenantId, first, options, { onlyIfFirst: true });
    return run ? { chainId: options.chainId, run: await this.announce(run, options) } : null;
  }

  /**
   * The chain new tenants start with; none when the deployment names none or this process
   * cannot start its roles (a deployment without the setup chain's agents registers tenants
   * without one).
   */
  setupChain(): ChainDefinition | undefined {
    const chain = this.deps.chains?.find((c) => c.name === this.deps.setupChain);
    return chain && chain.roles.every((role) => this.canStart(role)) ? chain : undefined;
  }

  /** A chain of the deployment by name; NOT_FOUND for one it does not have. */
  chain(name: string): ChainDefinition {
    const chain = this.deps.chains?.find((c) => c.name === name);
    if (!chain) throw notFound("chain");
    return chain;
  }

  /** The name of the chain new tenants start with, if the deployment names one. */
  get setupChainName(): string | undefined {
    return this.deps.setupChain;
  }

  /** The deployment's chains, in the order it declares them. */
  chains(): readonly ChainDefinition[] {
    return this.deps.chains ?? [];
  }

  private async chainInput(tenantId: string, chain: ChainDefinition): Promise<Record<string, unknown>> {
    if (!chain.input) return {};
    const tenant = await this.deps.db.tenant.findUnique({ where: { id: tenantId }, select: { id: true, name: true } });
    if (!tenant) throw notFound("tenant");
    return chain.input(tenant);
  }

  private canStart(agentRole: string): boolean {
    return this.isExternal(agentRole) || this.deps.roles().includes(agentRole);
  }

  /**
   * Tenants whose setup chain never started: a registration or demo seeding cut short before
   * its first run. A product's tenants (admin API, `externalId`) start only what they are told to.
   */
  async tenantsAwaitingSetup(limit = 1_000): Promise<string[]> {
    const tenants = await this.deps.db.tenant.findMany({
      where: { runs: { none: {} }, externalId: null },
      orderBy: { createdAt: "asc" },
      take: limit,
      select: { id: true },
    });
    return tenants.map((t) => t.id);
  }

  /** The run's row, made under the tenant's row lock; null when `onlyIfFirst` and the tenant has had a run. */
  private async insert(
    tenantId: string,
    agentRole: string,
    options: StartRunOptions,
    { onlyIfFirst }: { onlyIfFirst: boolean },
  ) {
    if (!this.canStart(agentRole)) {
      throw new PulseError("BAD_REQUEST", `agentRole: no agent named "${agentRole}"`);
    }
    const input = this.validInput(agentRole, options.input ?? {});
    return this.deps.db.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT 1 FROM "Tenant" WHERE "id" = ${tenantId} FOR UPDATE`;
      if (onlyIfFirst && (await tx.agentRun.findFirst({ where: { tenantId }, select: { id: true } }))) return null;
      await this.assertRoom(tx, tenantId, agentRole, input);
      const id = randomUUID();
      return tx.agentRun.create({
        data: {
          id,
          jobId: id,
          tenantId,
          agentRole,
          queue: agentRole,
          chainId: options.chainId ?? null,
          chainName: options.chainId ? (options.chainName ?? null) : null,
          input: input as object,
        },
      });
    }, TRANSACTION_LIMITS);
  }

  /**
   * CONFLICT when the role already has as many queued or running runs as it allows, for the
   * tenant or for this input's concurrency key. Called under the tenant's row lock.
   */
  private async assertRoom(
    tx: Pick<PrismaClient, "agentRun">,
    tenantId: string,
    agentRole: string,
    input: Record<string, unknown>,
  ): Promise<void> {
    const { perTenant, key } = this.deps.concurrency?.(agentRole) ?? { perTenant: 1 };
    const busy = await tx.agentRun.findMany({
      where: { tenantId, agentRole, status: { in: ["queued", "active"] } },
      select: { id: true, status: true, input: true },
      orderBy: { queuedAt: "asc" },
      // Without a key only the count matters; with one, every busy run's key is compared.
      ...(key ? { take: 10_000 } : { take: perTenant }),
    });
    const wanted = key?.(input);
    const same = key ? busy.filter((run) => key((run.input ?? {}) as Record<string, unknown>) === wanted) : busy;
    if (same.length < perTenant) return;
    const scope = key ? ` for ${JSON.stringify(wanted)}` : "";
    if (perTenant === 1) {
      const run = same[0]!;
      throw new PulseError(
        "CONFLICT",
        `${agentRole} is already ${run.status === "active" ? "running" : "queued"}${scope} (run ${run.id})`,
      );
    }
    throw new PulseError(
      "CONFLICT",
      `${agentRole} already has ${perTenant} runs queued or running${scope}, its most at once`,
    );
  }

  /** The input as the role's schema parsed it; BAD_REQUEST naming each bad field (`input.text: …`) otherwise. */
  private validInput(agentRole: string, input: Record<string, unknown>): Record<string, unknown> {
    const schema = this.deps.inputSchema?.(agentRole);
    if (!schema) return input;
    const parsed = schema.safeParse(input);
    if (parsed.success) return parsed.data as Record<string, unknown>;
    throw new PulseError(
      "BAD_REQUEST",
      describeInputIssues(parsed.error.issues.map((issue) => ({ ...issue, path: ["input", ...issue.path] }))),
    );
  }

  private isExternal(agentRole: string): boolean {
    return this.deps.externalRoles?.includes(agentRole) ?? false;
  }

  /** Tells every dashboard about a new run (`agent:queued`) and, unless an external agent runs it, enqueues its job. */
  private async announce(run: AgentRun, options: StartRunOptions): Promise<StartedRun> {
    const { bus, queues } = this.deps;
    const { tenantId, agentRole } = run;
    const queued = await bus.publish({
      type: "agent:queued",
      tenantId,
      runId: run.id,
      jobId: run.jobId,
      queue: run.queue,
      agentRole,
      attempt: 1,
      queuedAt: run.queuedAt.toISOString(),
      ...(run.chainId ? { chainId: run.chainId } : {}),
      ...(run.chainName ? { chainName: run.chainName } : {}),
    });
    const external = this.isExternal(agentRole);
    if (!external) {
      await queues.enqueue(agentRole, {
        tenantId,
        runId: run.id,
        ...(options.chainId ? { chainId: options.chainId } : {}),
        ...(options.chainId && options.chainName ? { chainName: options.chainName } : {}),
        chain: options.chain ?? [],
        // As the role's schema parsed it, defaults filled in.
        input: (run.input ?? {}) as Record<string, unknown>,
      });
    }
    const reportToken = external ? await this.deps.issueReportToken({ tenantId, runId: run.id }) : null;
    return { ...toRunView({ ...run, seq: queued?.event.seq ?? run.seq }), reportToken };
  }

  /**
   * Starts the first role of a named chain, with the given input or the one the chain makes
   * for the tenant; each later role starts when the one before completes.
   */
  async startChain(
    tenantId: string,
    name: string,
    input?: Record<string, unknown>,
  ): Promise<{ chainId: string; run: StartedRun }> {
    const chain = this.chain(name);
    const [first, ...rest] = chain.roles as [string, ...string[]];
    const chainId = randomUUID();
    const run = await this.start(tenantId, first, {
      chainId,
      chainName: name,
      chain: rest,
      input: input ?? (await this.chainInput(tenantId, chain)),
    });
    return { chainId, run };
  }

  /**
   * Cancels a queued or active run. The run is marked cancelled at once, so whatever its
   * worker still reports is dropped; the worker holding it is told to abort its signal.
   */
  async cancel(tenantId: string, runId: string, reason = "cancelled by user"): Promise<RunView> {
    const run = await this.require(tenantId, runId);
    if (run.status !== "queued" && run.status !== "active") {
      throw new PulseError("CONFLICT", `run is ${run.status}; only queued or active runs can be cancelled`);
    }
    await this.deps.queues.removeWaiting(run.agentRole, run.id);
    await this.deps.bus.publish({
      type: "agent:cancelled",
      tenantId,
      runId: run.id,
      jobId: run.jobId,
      queue: run.queue,
      agentRole: run.agentRole,
      attempt: run.attempt,
      cancelledAt: new Date().toISOString(),
      reason,
    });
    await this.deps.redis.publish(
      cancelChannel(this.deps.prefix),
      JSON.stringify({ runId: run.id, role: run.agentRole }),
    );
    return this.get(tenantId, runId);
  }

  /**
   * Retry: after a failure or cancel, a new run of the same role and input that picks its
   * chain up where it stopped (the rest of the chain follows it).
   */
  async retry(tenantId: string, runId: string): Promise<StartedRun> {
    const run = await this.require(tenantId, runId);
    if (run.status !== "failed" && run.status !== "cancelled") {
      throw new PulseError("CONFLICT", `run is ${run.status}; only failed or cancelled runs can be retried`);
    }
    const job = await this.deps.queues.get(run.agentRole).getJob(run.jobId);
    return this.start(tenantId, run.agentRole, {
      ...(run.chainId ? { chainId: run.chainId } : {}),
      ...(run.chainName ? { chainName: run.chainName } : {}),
      chain: job?.data.chain ?? [],
      input: (run.input ?? {}) as Record<string, unknown>,
    });
  }

  /**
   * Run again: a new run of a finished run's role with the same input, on its own (no chain
   * follows it), whether the run completed, failed or was cancelled.
   */
  async runAgain(tenantId: string, runId: string): Promise<StartedRun> {
    const run = await this.require(tenantId, runId);
    if (run.status === "queued" || run.status === "active") {
      throw new PulseError("CONFLICT", `run is ${run.status}; only a finished run can be run again`);
    }
    return this.start(tenantId, run.agentRole, { input: (run.input ?? {}) as Record<string, unknown> });
  }

  async get(tenantId: string, runId: string): Promise<RunView> {
    const run = await this.find(tenantId, runId);
    if (!run) throw notFound("run");
    return run;
  }

  /**
   * At most `limit` characters of the run's output before `before` or from `after` (see
   * `readOutputPage`): how a page loads what precedes the window its view carries.
   */
  async output(
    tenantId: string,
    runId: string,
    page: { before?: number; after?: number; limit?: number },
  ): Promise<OutputPage> {
    const found = await readOutputPage(this.deps.db, tenantId, runId, {
      ...page,
      limit: page.limit ?? OUTPUT_WINDOW_CHARS,
    });
    if (!found) throw notFound("run");
    return found;
  }

  /** The tenant's run, or null when it has none of that id. */
  async find(tenantId: string, runId: string): Promise<RunView | null> {
    return (await this.snapshot(tenantId, runId))?.runs[0] ?? null;
  }

  /**
   * The tenant's queued and active runs and each role's latest (see `readAgentSnapshot`), read
   * after the call began and shared with the callers asking at the same time: the result must
   * not be changed.
   */
  tenantSnapshot(tenantId: string, filter: { agentRole?: string } = {}): Promise<AgentSnapshot> {
    return this.tenantSnapshots.read(`${tenantId}:${filter.agentRole ?? ""}`, () =>
      readAgentSnapshot(this.source, tenantId, filter),
    );
  }

  /**
   * One run with the newest of its output (see `readRunSnapshot`), read after the call began
   * and shared with the callers asking at the same time: the result must not be changed.
   */
  snapshot(tenantId: string, runId: string): Promise<AgentSnapshot | null> {
    return this.snapshots.read(`${tenantId}:${runId}`, () =>
      readRunSnapshot({ ...this.source, windows: this.windows }, tenantId, runId),
    );
  }

  /**
   * One page of the tenant's runs, newest first, with the cursor of the next page (null on
   * the last): see `runSearchStatement`.
   */
  async list(tenantId: string, search: RunSearch): Promise<{ runs: RunView[]; nextCursor: string | null }> {
    const roles = roleNames(this.deps.roles(), this.deps.externalRoles ?? [], this.deps.roleTitle);
    const found = await this.deps.db.$queryRaw<{ id: string; queuedAt: Date }[]>(
      runSearchStatement(tenantId, search, roles),
    );
    const ids = found.slice(0, search.limit).map((r) => r.id);
    const rows = await this.deps.db.agentRun.findMany({
      where: { tenantId, id: { in: ids } },
      include: { steps: { orderBy: { startedAt: "asc" } } },
    });
    const byId = new Map(rows.map((r) => [r.id, r]));
    // A run deleted between the two reads is left out rather than failing the page.
    const runs = ids.flatMap((id) => (byId.has(id) ? [toRunView(byId.get(id)!)] : []));
    return { runs, nextCursor: found.length > search.limit ? encodeRunCursor(found[search.limit - 1]!) : null };
  }

  /**
   * The median duration of each role's recent completed runs for this tenant, in ms: the
   * basis of a chain's estimated time left.
   */
  async typicalDurations(tenantId: string, sample = 20): Promise<Record<string, number>> {
    const rows = await this.deps.db.agentRun.findMany({
      where: { tenantId, status: "completed", startedAt: { not: null }, completedAt: { not: null } },
      orderBy: { completedAt: "desc" },
      take: sample * 10,
      select: { agentRole: true, startedAt: true, completedAt: true },
    });
    const byRole = new Map<string, number[]>();
    for (const row of rows) {
      const list = byRole.get(row.agentRole) ?? [];
      if (list.length < sample) list.push(row.completedAt!.getTime() - row.startedAt!.getTime());
      byRole.set(row.agentRole, list);
    }
    return Object.fromEntries(
      [...byRole].map(([role, list]) => {
        const sorted = list.sort((a, b) => a - b);
        return [role, sorted[Math.floor(sorted.length / 2)]!];
      }),
    );
  }

  /** A run's logs, oldest first, a page at a time. */
  async logs(tenantId: string, runId: string, cursor: string | undefined, limit: number) {
    await this.require(tenantId, runId);
    // Prisma positions a cursor by the row it names wherever that row lives, so a log id of
    // another run or tenant must be refused here, like one that does not exist.
    if (
      cursor &&
      !(await this.deps.db.runLog.findFirst({ where: { id: cursor, runId, tenantId }, select: { id: true } }))
    ) {
      throw new PulseError("NOT_FOUND", "cursor: log entry not found");
    }
    const rows = await this.deps.db.runLog.findMany({
      where: { runId, tenantId },
      orderBy: [{ at: "asc" }, { id: "asc" }],
      take: limit + 1,
      ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
    });
    const page = rows.slice(0, limit);
    return {
      logs: page.map((l) => ({
        id: l.id,
        level: l.level,
        message: l.message,
        attempt: l.attempt,
        at: l.at.toISOString(),
      })),
      nextCursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null,
    };
  }

  private async require(tenantId: string, runId: string) {
    const run = await this.deps.db.agentRun.findFirst({ where: { id: runId, tenantId } });
    if (!run) throw notFound("run");
    return run;
  }
}
