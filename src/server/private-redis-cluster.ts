import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { PrivateRedisServer } from "./private-redis-server";
import type { ClusterRedisTarget } from "./redis";

const run = promisify(execFile);

export interface PrivateRedisClusterOptions {
  bin?: string;
  /** redis-cli, which creates the cluster (`--cluster create`). */
  cliBin?: string;
  masters?: number;
  replicasPerMaster?: number;
  /**
   * How long a master may be unreachable before its replica takes over. Short for failover
   * tests; the default leaves a loaded machine's pauses well clear of a spurious failover.
   */
  nodeTimeoutMs?: number;
  /** How long the cluster may take to form (default 60 s: six servers on a busy two-core machine). */
  startTimeoutMs?: number;
}

/** One node as CLUSTER NODES describes it. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: "master" | "replica";
  /** For a replica, the id of its master. */
  masterId: string | null;
  /** Slot ranges a master serves, inclusive. */
  slots: [number, number][];
  failed: boolean;
}

const CLUSTER_SLOTS = 16_384;

/**
 * A Redis Cluster of Pulse's own for tests and benchmarks: redis-server processes in cluster
 * mode on free loopback ports (by default three masters with one replica each), each with its
 * own directory, joined by `redis-cli --cluster create`. Each server dies with the process
 * that started it (see `PrivateRedisServer`). `npm start` without configuration still uses
 * one private redis-server; this is for proving Pulse on a cluster.
 *
 * @see https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/
 */
export class PrivateRedisCluster {
  readonly servers: PrivateRedisServer[] = [];
  /** Directories of restarted nodes, which their new server does not own. */
  private readonly orphanDirs: string[] = [];
  private readonly options: Required<PrivateRedisClusterOptions>;

  constructor(options: PrivateRedisClusterOptions = {}) {
    this.options = {
      bin: "redis-server",
      cliBin: "redis-cli",
      masters: 3,
      replicasPerMaster: 1,
      nodeTimeoutMs: 5_000,
      startTimeoutMs: 60_000,
      ...options,
    };
  }

  /** Every node's port, as started (masters and replicas alike; roles change on failover). */
  get ports(): number[] {
    return this.servers.map((s) => s.port);
  }

  /** REDIS_CLUSTER_NODES's form: `127.0.0.1:port,…`. */
  get nodesList(): string {
    return this.ports.map((port) => `127.0.0.1:${port}`).join(",");
  }

  get target(): ClusterRedisTarget {
    return { cluster: { nodes: this.ports.map((port) => ({ host: "127.0.0.1", port })) } };
  }

  async start(): Promise<this> {
    const { masters, replicasPerMaster, bin } = this.options;
    const count = masters * (1 + replicasPerMaster);
    try {
      const started = await Promise.all(
        Array.from({ length: count }, () => new PrivateRedisServer({ bin, extraArgs: this.nodeArgs() }).start()),
      );
      this.servers.push(...started);
      await this.create();
      await this.waitUntilFormed();
      return this;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  private nodeArgs(): string[] {
    return [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      "nodes.conf",
      "--cluster-node-timeout",
      String(this.options.nodeTimeoutMs),
    ];
  }

  /** Joins the servers: the first `masters` become masters, the rest their replicas. */
  private async create(): Promise<void> {
    const args = [
      "--cluster",
      "create",
      ...this.ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      String(this.options.replicasPerMaster),
      "--cluster-yes",
    ];
    try {
      await run(this.options.cliBin, args, { timeout: this.options.startTimeoutMs });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new Error(
          `Pulse's test cluster needs "${this.options.cliBin}" on PATH (Debian/Ubuntu: apt-get install -y redis-tools; macOS: brew install redis)`,
          { cause: error },
        );
      }
      const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
      throw new Error(
        `redis-cli --cluster create failed: ${(stderr || stdout || (error as Error).message).trim().split("\n").slice(-3).join(" ")}`,
        { cause: error },
      );
    }
  }

  /**
   * Waits until every node says `cluster_state:ok` with all slots served, knows every other
   * node, and each replica has synced with its master: only then does a failover test find a
   * replica ready to take over.
   */
  private async waitUntilFormed(): Promise<void> {
    const deadline = Date.now() + this.options.startTimeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      last = await this.notFormedReason().catch((err: Error) => err.message);
      if (!last) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the private Redis Cluster did not form within ${this.options.startTimeoutMs / 1000} s: ${last}`);
  }

  private async notFormedReason(): Promise<string> {
    for (const port of this.ports) {
      const reason = await this.withNode(port, async (node) => {
        const info = await node.cluster("INFO");
        if (!info.includes("cluster_state:ok")) return `node ${port} is not ok yet`;
        if (!info.includes(`cluster_slots_ok:${CLUSTER_SLOTS}`)) return `node ${port} does not see all slots served`;
        if (!info.includes(`cluster_known_nodes:${this.servers.length}`))
          return `node ${port} does not know every node yet`;
        const replication = await node.info("replication");
        if (replication.includes("role:slave") && !replication.includes("master_link_status:up"))
          return `replica ${port} has not synced yet`;
        return "";
      });
      if (reason) return reason;
    }
    return "";
  }

  /** The cluster as a live node sees it now (asks the nodes in turn until one answers). */
  async nodes(): Promise<ClusterNodeInfo[]> {
    for (const server of this.servers.filter((s) => s.running)) {
      try {
        return parseClusterNodes(await this.withNode(server.port, (node) => node.cluster("NODES") as Promise<string>));
      } catch {
        // That node is going away: ask the next.
      }
    }
    throw new Error("no node of the private Redis Cluster answers");
  }

  /** The port of the master that serves `slot` now. */
  async masterOf(slot: number): Promise<number> {
    const master = (await this.nodes()).find(
      (n) => n.role === "master" && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b),
    );
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return master.port;
  }

  /** The ports of the masters serving slots now. */
  async masterPorts(): Promise<number[]> {
    return (await this.nodes())
      .filter((n) => n.role === "master" && !n.failed && n.slots.length > 0)
      .map((n) => n.port);
  }

  /** Kills the node on `port` abruptly (SIGKILL), as a crash would: its replica takes over after the node timeout. */
  async kill(port: number): Promise<void> {
    await this.server(port).kill();
  }

  /**
   * Freezes the node on `port` (SIGSTOP) until `thaw`: a replica frozen while its master
   * takes writes falls behind, so a failover then loses the writes it never received, as
   * asynchronous replication can.
   */
  freeze(port: number): void {
    this.server(port).suspend();
  }

  thaw(port: number): void {
    this.server(port).resume();
  }

  /**
   * Starts a killed node again on its port and directory: its nodes.conf makes it rejoin,
   * and it comes back as a replica of the master that took its slots.
   */
  async restart(port: number): Promise<void> {
    const old = this.server(port);
    if (old.running) throw new Error(`node ${port} is still running`);
    const restarted = await new PrivateRedisServer({
      bin: this.options.bin,
      port,
      dir: old.dir,
      extraArgs: this.nodeArgs(),
    }).start();
    this.servers[this.servers.indexOf(old)] = restarted;
    // The first server's directory was its own: the new one, given it, leaves it behind; remove it here.
    this.orphanDirs.push(old.dir);
  }

  /** Waits until the cluster is whole again: every node ok and known, every replica synced. */
  async waitUntilHealthy(): Promise<void> {
    await this.waitUntilFormed();
  }

  /** The replica of the master on `port` (the node that would take over), if it has one. */
  async replicaOf(port: number): Promise<number | null> {
    const nodes = await this.nodes();
    const master = nodes.find((n) => n.port === port);
    return (
      nodes.find((n) => n.role === "replica" && master !== undefined && n.masterId === master.id && !n.failed)?.port ??
      null
    );
  }

  private server(port: number): PrivateRedisServer {
    const server = this.servers.find((s) => s.port === port);
    if (!server) throw new Error(`no node of this cluster on port ${port}`);
    return server;
  }

  /** Waits until every slot is served again (after a failover), as the surviving nodes see it. */
  async waitUntilServing(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ok = await Promise.all(
        this.servers
          .filter((s) => s.running)
          .map((s) => this.withNode(s.port, (n) => n.cluster("INFO") as Promise<string>).catch(() => "")),
      );
      if (ok.every((info) => info.includes("cluster_state:ok") && info.includes(`cluster_slots_ok:${CLUSTER_SLOTS}`)))
        return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the private Redis Cluster did not serve every slot again within ${timeoutMs / 1000} s`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
    this.servers.length = 0;
    await Promise.all(this.orphanDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  }

  private async withNode<T>(port: number, use: (node: Redis) => Promise<T>): Promise<T> {
    const node = new Redis({
      host: "127.0.0.1",
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 5_000,
    });
    node.on("error", () => {});
    try {
      await node.connect();
      return await use(node);
    } finally {
      node.disconnect();
    }
  }
}

/**
 * CLUSTER NODES's lines: `id host:port@bus flags master-id ping pong epoch link slot…`.
 *
 * @see https://redis.io/docs/latest/commands/cluster-nodes/
 */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  return text
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => {
      const [id = "", address = "", flags = "", masterId = "-", , , , , ...slots] = line.trim().split(" ");
      const flagSet = new Set(flags.split(","));
      return {
        id,
        port: Number(address.split("@")[0]!.split(":").at(-1)),
        role: flagSet.has("master") ? "master" : "replica",
        masterId: masterId === "-" ? null : masterId,
        slots: slots
          .filter((s) => !s.startsWith("["))
          .map((s) => {
            const [a, b = a] = s.split("-");
            return [Number(a), Number(b)] as [number, number];
          }),
        failed: flagSet.has("fail") || flagSet.has("fail?"),
      };
    });
}
