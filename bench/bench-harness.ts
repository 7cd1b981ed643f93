import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { TokenSigner } from "../src/server/auth/token-signer";
import { PrivateRedisServer } from "../src/server/private-redis-server";
import type { BenchPlan } from "./bench-plan";
import type { ConnectResult, MachineInfo } from "./bench-result";
import { log, sleep } from "./bench-log";
import { prepareDatabase, type BenchDatabase } from "./bench-database";
import { REPO_ROOT, type BenchOptions } from "./bench-options";
import type { ClientsInit, ConnectOutcome } from "./clients";
import type { FirstEventOutcome, FirstEventWave } from "./first-event";
import { BenchProcess } from "./ipc";
import type { StormClientsInit, StormConnectOutcome, StormOutcome } from "./reconnect-storm";
import type { StormRange } from "./storm-ledger";
import { cpuShares, sampleCpu } from "./machine-cpu";
import type { LoadStep, StepOutcome, ThroughputOutcome, ThroughputRun } from "./open-loop";
import type { ServerStats } from "./servers/server-stats";
import type { TenantSpec } from "./servers/pulse-tenants";
import { BENCH_ROLES, type BenchTenant, type Design, type RunTarget, type SocketIoAdapter } from "./workload";

/** Redis's own CPU time so far (s), from INFO: what the shared Redis spent on each step. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const read = (key: string) => Number(new RegExp(`${key}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return read("used_cpu_sys") + read("used_cpu_user");
}

/** The machine's busy share over `ms` while the bench does nothing: other work that will compete with it. */
export async function backgroundLoad(ms = 2_000): Promise<number> {
  const before = sampleCpu();
  await sleep(ms);
  return cpuShares(before, sampleCpu(), ms / 1000).machineBusy;
}

/** The commit under test, marked when the work tree has changes to it; "unknown" outside git. */
export function revision(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const head = git("rev-parse", "--short", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") ? `${head} + changes` : head;
  } catch {
    return "unknown";
  }
}

/** The machine the figures come from, as the report states it. */
export async function machineInfo(redis: Redis, database: BenchDatabase, backgroundBusy: number): Promise<MachineInfo> {
  const server = await redis.info("server");
  return {
    backgroundBusy: Math.round(backgroundBusy * 100) / 100,
    cpu: os.cpus()[0]?.model.trim() ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    redis: /redis_version:(\S+)/.exec(server)?.[1] ?? "unknown",
    database: database.description,
  };
}

/** A connection per token of `tenants`, tenants in turn, so the first connections (the official clients) spread over tenants. */
function connectionsOf(tenants: BenchTenant[]): ClientsInit["connections"] {
  const connections: ClientsInit["connections"] = [];
  const most = Math.max(0, ...tenants.map((t) => t.tokens.length));
  for (let c = 0; c < most; c++) {
    tenants.forEach((t, tenant) => {
      const token = t.tokens[c];
      if (token !== undefined) connections.push({ tenant, token });
    });
  }
  return connections;
}

export interface DesignServer {
  design: Design;
  process: BenchProcess;
  baseUrl: string;
  stats(gc?: boolean): Promise<ServerStats>;
}

/**
 * One design's processes for the whole run: its own server; its worker (Pulse's publisher
 * has a process of its own; the others share one; on PGlite Pulse's server publishes); and
 * the client process every design shares (steps run one at a time).
 */
export interface DesignKit {
  design: Design;
  server: DesignServer;
  publisher: BenchProcess;
  clients: BenchProcess;
}

/** How long a server process may take to listen (Pulse's migrates the database first). */
const SERVER_START_MS = 180_000;

/**
 * Every process of a bench run and the one place that stops them: the private Redis, the
 * database, and each design's server, publisher and client processes; plus the operations
 * the scenarios drive them with (tenants, targets, steps, connections, profiles).
 */
export class BenchHarness {
  readonly redisServer = new PrivateRedisServer();
  redis!: Redis;
  database!: BenchDatabase;
  private readonly kits = new Map<Design, DesignKit>();
  private readonly children = new Set<BenchProcess>();
  private readonly competitorSecret = randomBytes(32);
  private readonly signer = new TokenSigner(this.competitorSecret);
  private readonly pulseSecret = randomBytes(32).toString("base64url");
  private tenantLabel = 0;
  private socketIoAdapterInUse: SocketIoAdapter = "redis";

  constructor(
    readonly plan: BenchPlan,
    readonly designs: Design[],
    readonly args: BenchOptions,
  ) {}

  /** Redis, the database, then every design's server, the publishers and the client process, in parallel. */
  async start(): Promise<void> {
    await this.redisServer.start();
    this.redis = new Redis(this.redisServer.url);
    // A client whose replies Redis cannot hand over is cut off past 256 MB instead of
    // growing Redis without bound: Socket.IO's session restore on the Streams adapter reads
    // the whole stream per reconnecting client with no count, and a storm of them held
    // 9-11 GB of replies in Redis, on a machine that has 24 GiB for everything. No design's
    // reads come near it otherwise.
    await this.redis.config("SET", "client-output-buffer-limit", "normal 256mb 64mb 30");
    this.database = await prepareDatabase(this.args.databaseUrl);
    const clients = this.spawn("clients", "bench/clients.ts");
    const competitors = this.designs.some((d) => d !== "pulse")
      ? this.spawn("publisher", "bench/publisher.ts")
      : undefined;
    await Promise.all(this.designs.map((design) => this.startKit(design, clients, competitors)));
  }

  get pulseInServer(): boolean {
    return this.database.url === null;
  }

  /** Pulse's configuration, through the environment as an operator sets it. */
  private pulseEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: "0",
      REDIS_URL: this.redisServer.url,
      DATABASE_URL: this.database.url ?? "",
      PGLITE_DIR: "memory://",
      AUTH_SECRET: this.pulseSecret,
      PULSE_WEB: "false",
      PULSE_WORKERS: "false",
      PULSE_DEMO: "false",
      LOG_LEVEL: "warn",
      WS_MAX_CONNECTIONS: "1000000",
      WS_MAX_CONNECTIONS_PER_TENANT: "1000000",
      WS_MAX_CONNECTIONS_PER_USER: "100000",
      WS_MAX_CONNECTIONS_PER_IP: "1000000",
      WS_MESSAGES_PER_SECOND: "100000",
      // The polling clients all call from 127.0.0.1, many for one tenant.
      HTTP_CALLS_PER_SECOND_PER_IP: "1000000",
      HTTP_CALLS_PER_SECOND_PER_TENANT: "1000000",
    };
  }

  private spawn(
    name: string,
    script: string,
    options: { env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {},
  ): BenchProcess {
    const child = BenchProcess.start({ name, script, ...options });
    this.children.add(child);
    return child;
  }

  private async startKit(design: Design, clients: BenchProcess, competitors: BenchProcess | undefined): Promise<void> {
    const pulse = design === "pulse";
    const server = await this.startServer(design);
    let publisher = server.process;
    if (!(pulse && this.pulseInServer)) {
      // Pulse's worker starts once its server has migrated the database.
      publisher = pulse ? this.spawn("pulse publisher", "bench/publisher.ts", { env: this.pulseEnv() }) : competitors!;
      await this.initPublisher(design, publisher);
    }
    this.kits.set(design, { design, server, publisher, clients });
    log(`  ${design}: ready`);
  }

  /**
   * Starts the design's server process and waits for it to listen. One that has not within
   * `SERVER_START_MS` (or exited) is killed and another started, once: a run of the length of
   * `npm run bench` should not end on one process that hung while starting.
   */
  private async startServer(design: Design, retried = false): Promise<DesignServer> {
    const serverProcess =
      design === "pulse"
        ? this.spawn("pulse server", "bench/servers/pulse-server.ts", { env: this.pulseEnv() })
        : this.spawn(`${design} server`, `bench/servers/${design}-server.ts`);
    const config = {
      redisUrl: this.redisServer.url,
      secret: this.competitorSecret.toString("base64url"),
      adapter: this.socketIoAdapterInUse,
    };
    let port: number;
    try {
      ({ port } = await serverProcess.request<{ port: number }>("init", config, SERVER_START_MS));
    } catch (error) {
      await serverProcess.kill();
      this.children.delete(serverProcess);
      if (retried) throw error;
      log(
        `  ${design}: its server did not start (${error instanceof Error ? error.message : String(error)}); starting another`,
      );
      return this.startServer(design, true);
    }
    return {
      design,
      process: serverProcess,
      baseUrl: `http://127.0.0.1:${port}`,
      stats: (gc = false) => serverProcess.request<ServerStats>("stats", { gc }),
    };
  }

  private async initPublisher(design: Design, publisher: BenchProcess): Promise<void> {
    const init = {
      design,
      redisUrl: this.redisServer.url,
      socketIoPublish: this.args.socketIoPublish,
      socketIoAdapter: this.socketIoAdapterInUse,
      databaseUrl: this.database.url,
    };
    await publisher.request("init", init, 180_000);
  }

  /**
   * Moves the Socket.IO design to `adapter` (a no-op when it is there already, or when
   * Socket.IO is not in the run): its server is replaced by a new process, so no state or
   * heap of the previous setup stays in the figures, and its publisher is initialised again.
   * The reconnect storm runs on the Redis Streams adapter and moves back after.
   */
  async useSocketIoAdapter(adapter: SocketIoAdapter): Promise<void> {
    const kit = this.kits.get("socket-io");
    if (!kit || adapter === this.socketIoAdapterInUse) return;
    this.socketIoAdapterInUse = adapter;
    await this.replaceServer("socket-io");
    await this.initPublisher("socket-io", kit.publisher);
    log(`  socket-io: now on the ${adapter} adapter`);
  }

  /**
   * Replaces the design's server with a new process: asked to stop, killed if it has not
   * within 10 s (one that stopped answering), so the scenarios after a server that failed
   * measure a working one. Its tenants and connections go with it; where the server is also
   * the publisher (Pulse on PGlite), so does the publisher.
   */
  async replaceServer(design: Design): Promise<void> {
    const kit = this.kit(design);
    const old = kit.server.process;
    await old.stop().catch(() => old.kill());
    this.children.delete(old);
    const server = await this.startServer(design);
    this.kits.set(design, { ...kit, server, publisher: kit.publisher === old ? server.process : kit.publisher });
  }

  kit(design: Design): DesignKit {
    const kit = this.kits.get(design);
    if (!kit) throw new Error(`no ${design} processes`);
    return kit;
  }

  server(design: Design): DesignServer {
    return this.kit(design).server;
  }

  /** A scenario's tenants: created in Pulse's database for Pulse, made up (with signed tokens) for the others. */
  async tenants(design: Design, spec: Omit<TenantSpec, "label">): Promise<BenchTenant[]> {
    const label = `t${++this.tenantLabel}`;
    if (design === "pulse")
      return this.server("pulse").process.request<BenchTenant[]>("setup", { ...spec, label }, 300_000);
    const id = () => `c${randomBytes(16).toString("hex").slice(0, 24)}`;
    return Promise.all(
      Array.from({ length: spec.tenants }, async () => {
        const tenantId = id();
        const runs: RunTarget[] = Array.from({ length: spec.runsPerTenant }, (_, r) => {
          const role = BENCH_ROLES[r % BENCH_ROLES.length]!;
          return { tenantId, runId: id(), jobId: randomUUID(), queue: role, agentRole: role };
        });
        const tokens = await Promise.all(
          Array.from(
            { length: spec.connectionsPerTenant },
            async () => (await this.signer.sign("socket", id(), { tid: tenantId }, 86_400)).token,
          ),
        );
        return { tenantId, runs, tokens };
      }),
    );
  }

  /** Starts (or stops, writing the files) CPU profiles of the design's server and publisher, with `--profile`. */
  async profile(design: Design, action: "start" | "stop", label: string): Promise<string[]> {
    if (!this.args.profile) return [];
    const kit = this.kit(design);
    const roles: [string, BenchProcess][] = [["server", kit.server.process]];
    if (kit.publisher !== kit.server.process) roles.push(["publisher", kit.publisher]);
    const files = await Promise.all(
      roles.map(([role, child]) =>
        child.request<string | null>(`profile-${action}`, {
          file: path.join(REPO_ROOT, ".data/bench/profile", `${label}-${design}-${role}.cpuprofile`),
        }),
      ),
    );
    return files.filter((f): f is string => typeof f === "string");
  }

  /** Points the design's publisher at these tenants' runs. */
  async target(design: Design, tenants: BenchTenant[]): Promise<void> {
    await this.kit(design).publisher.request("target", { design, tenants: tenants.map((t) => ({ ...t, tokens: [] })) });
  }

  step(design: Design, step: LoadStep, timeoutMs: number): Promise<StepOutcome> {
    return this.kit(design).publisher.request<StepOutcome>("step", { design, step, timeoutMs }, timeoutMs + 30_000);
  }

  /** Ends the design's running step before its schedule does (the events already sent are still answered). */
  async endStep(design: Design): Promise<void> {
    await this.kit(design).publisher.request("end-step");
  }

  throughput(design: Design, run: ThroughputRun): Promise<ThroughputOutcome> {
    return this.kit(design).publisher.request<ThroughputOutcome>(
      "throughput",
      { design, run },
      run.durationMs + 60_000,
    );
  }

  /** Opens a subscriber connection per token of `tenants` in the design's client process. */
  async connect(design: Design, tenants: BenchTenant[], official: number): Promise<ConnectResult> {
    const connections = connectionsOf(tenants);
    const init: ClientsInit = {
      design,
      baseUrl: this.server(design).baseUrl,
      connections,
      official,
      concurrency: this.plan.connectConcurrency,
    };
    const outcome = await this.kit(design).clients.request<ConnectOutcome>("connect", init, 600_000);
    return {
      design,
      connections: connections.length,
      ready: outcome.ready,
      failed: outcome.failed,
      errors: outcome.errors,
      connectMs: Math.round(outcome.elapsedMs),
    };
  }

  /** Opens a connection per token of `tenants` all at once and times each to its first live event; closes them after. */
  firstEvents(design: Design, tenants: BenchTenant[], timeoutMs: number): Promise<FirstEventOutcome> {
    const wave: FirstEventWave = {
      design,
      baseUrl: this.server(design).baseUrl,
      connections: connectionsOf(tenants),
      timeoutMs,
    };
    return this.kit(design).clients.request<FirstEventOutcome>("first-event", wave, timeoutMs + 60_000);
  }

  /** Connects a storm client per token of `tenants` (they reconnect after `dropConnections`, each resuming its own way). */
  stormConnect(design: Design, tenants: BenchTenant[]): Promise<StormConnectOutcome> {
    const init: StormClientsInit = {
      design,
      baseUrl: this.server(design).baseUrl,
      connections: connectionsOf(tenants),
      concurrency: this.plan.connectConcurrency,
    };
    return this.kit(design).clients.request<StormConnectOutcome>("storm-connect", init, 600_000);
  }

  /**
   * Publishes one event to each of `tenants` tenants from `seqStart` and waits until every
   * storm client has had its tenant's: how many have not. A deploy drops clients that have
   * been live, and socket.io-client has no offset to resume from before its first event.
   */
  async stormLive(design: Design, tenants: number, seqStart: number): Promise<number> {
    const { clients } = this.kit(design);
    await clients.request("storm-expect-live", { design, seqStart, tenants });
    await this.step(design, { tenants, runsPerTenant: 1, rate: tenants, count: tenants, seqStart }, 30_000);
    return clients.request<number>("storm-live", { design, timeoutMs: 10_000 }, 40_000);
  }

  /** The server destroys every connection at once, as a deploy would; resolves when the clients have seen it, to how many are still open. */
  async dropConnections(design: Design): Promise<{ dropped: number; stillOpen: number }> {
    const dropped = await this.server(design).process.request<number>("drop-connections");
    const stillOpen = await this.kit(design).clients.request<number>("storm-dropped", { design, timeoutMs: 10_000 });
    return { dropped, stillOpen };
  }

  /** Every storm client reconnects at once; resolves once all are back to live or `timeoutMs` passed. */
  stormReconnect(design: Design, range: StormRange, timeoutMs: number): Promise<StormOutcome> {
    return this.kit(design).clients.request<StormOutcome>(
      "storm-reconnect",
      { design, range, timeoutMs },
      timeoutMs + 60_000,
    );
  }

  async stormClose(design: Design): Promise<void> {
    await this.kit(design).clients.request("storm-close", { design });
  }

  async disconnect(design: Design): Promise<void> {
    await this.kit(design).clients.request("close", { design });
  }

  async flush(): Promise<void> {
    await this.redis.flushall();
  }

  /** Waits until a server has stopped working off a backlog (or a few seconds passed). */
  async settle(design: Design, maxMs = 8_000): Promise<void> {
    const server = this.server(design);
    const deadline = Date.now() + maxMs;
    let previous = await server.stats();
    while (Date.now() < deadline) {
      await sleep(250);
      const current = await server.stats();
      const cores = (current.cpuUs - previous.cpuUs) / 250_000;
      previous = current;
      if (cores < 0.05) return;
    }
  }

  async close(): Promise<void> {
    // Clients first, then publishers, then servers, each asked to stop cleanly.
    const kits = [...this.kits.values()];
    const stop = async (children: Set<BenchProcess>) =>
      Promise.all([...children].map((child) => child.stop().catch(() => child.kill())));
    await stop(new Set(kits.map((k) => k.clients)));
    await stop(new Set(kits.filter((k) => k.publisher !== k.server.process).map((k) => k.publisher)));
    await stop(this.children);
    this.children.clear();
    await this.database
      ?.drop()
      .catch((error: Error) => log(`bench: could not drop the bench database: ${error.message}`));
    this.redis?.disconnect();
    await this.redisServer.stop();
  }
}
