import path from "node:path";
import type { BenchPlan } from "./bench-plan";
import {
  DESIGNS,
  SOCKET_IO_ADAPTERS,
  SOCKET_IO_PUBLISH,
  type Design,
  type SocketIoAdapter,
  type SocketIoPublish,
} from "./workload";

export const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/**
 * The command line of `npm run bench`: `--smoke` (seconds, for `npm test`),
 * `--only=pulse,ws-floor`, `--scenarios=wide,narrow,soak,first-event,reconnect-storm,idle` (any of them; `soak`,
 * the long soak, runs within narrow), `--out=<json file>`,
 * `--database-url=<postgres url>|none`, `--repetitions=N`, `--soak-seconds=S`, `--no-docs`,
 * `--wave-clients=N` and `--storm-clients=N` (the first-event wave's and the reconnect
 * storm's clients, for a run at another size), `--socket-io-publish=emitter|emitter-postgres|bridge`
 * (how the Socket.IO design's events reach it: `@socket.io/redis-emitter`, the default and
 * its cheapest way; the emitter after a write to PostgreSQL, as Pulse persists; or seed
 * 000's BullMQ bridge, see `SOCKET_IO_PUBLISH`); `--socket-io-storm=memory|redis-streams`
 * (the setup Socket.IO's reconnect storm runs on, both with connection-state recovery: one
 * node on the in-memory adapter, the default, or `@socket.io/redis-streams-adapter`); `--profile`: the load scenarios only
 * (Pulse only unless `--only` says otherwise), with CPU profiles of the server and publisher
 * processes over the load steps in .data/bench/profile/ (read them with
 * `tsx bench/profile-summary.ts <file>`), and over the subscribes, reconnects or connects of
 * `first-event`, `reconnect-storm` or `idle` when `--scenarios` names them; `--heap`: the idle scenario only, 1,000
 * subscribers, with heap snapshots of each server before and after they connect (compare
 * them with `tsx bench/heap-summary.ts <before> <after> <connections>`).
 */
export interface BenchOptions {
  smoke: boolean;
  only: Design[] | null;
  scenarios: string[] | null;
  out: string;
  databaseUrl: string | null | undefined;
  profile: boolean;
  heap: boolean;
  docs: boolean;
  socketIoPublish: SocketIoPublish;
  /** The adapter Socket.IO's reconnect storm runs on (`SOCKET_IO_ADAPTERS`, those that recover sessions). */
  socketIoStorm: Exclude<SocketIoAdapter, "redis">;
  /** Overrides the plan's soak (`--soak-seconds=3` for a quick look; 60 in a full run). */
  soakSeconds: number | null;
  /** Overrides the plan's repetitions (`--repetitions=N`). */
  repetitions: number | null;
  /** Override the clients of the first-event wave and of the reconnect storm (spread over the plan's tenants). */
  waveClients: number | null;
  stormClients: number | null;
}

export function parseArgs(argv: string[]): BenchOptions {
  const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const flag = (name: string) => argv.includes(`--${name}`);
  const known = [
    "smoke",
    "only",
    "scenarios",
    "out",
    "database-url",
    "profile",
    "heap",
    "no-docs",
    "socket-io-publish",
    "socket-io-storm",
    "soak-seconds",
    "repetitions",
    "wave-clients",
    "storm-clients",
  ];
  for (const arg of argv) {
    const name = arg.replace(/^--/, "").split("=")[0]!;
    if (!arg.startsWith("--") || !known.includes(name))
      throw new Error(`unknown argument "${arg}" (known: ${known.map((k) => `--${k}`).join(", ")})`);
  }
  const only = value("only");
  const designs = only ? only.split(",").map((d) => d.trim()) : null;
  for (const design of designs ?? []) {
    if (!DESIGNS.includes(design as Design))
      throw new Error(`--only: unknown design "${design}" (known: ${DESIGNS.join(", ")})`);
  }
  const socketIoPublish = value("socket-io-publish") ?? "emitter";
  if (!SOCKET_IO_PUBLISH.includes(socketIoPublish as SocketIoPublish)) {
    throw new Error(`--socket-io-publish: unknown way "${socketIoPublish}" (known: ${SOCKET_IO_PUBLISH.join(", ")})`);
  }
  const socketIoStorm = value("socket-io-storm") ?? "memory";
  if (socketIoStorm === "redis" || !SOCKET_IO_ADAPTERS.includes(socketIoStorm as SocketIoAdapter)) {
    throw new Error(`--socket-io-storm: unknown setup "${socketIoStorm}" (known: memory, redis-streams)`);
  }
  const database = value("database-url");
  const number = (name: string) => {
    const text = value(name);
    if (text === undefined) return null;
    const parsed = Number(text);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${name}: "${text}" is not a positive number`);
    return parsed;
  };
  const smoke = flag("smoke");
  const profile = flag("profile");
  const heap = flag("heap");
  const scenarios = value("scenarios") ?? (heap ? "" : undefined);
  return {
    smoke,
    only: (designs as Design[] | null) ?? (profile ? ["pulse"] : null),
    scenarios: scenarios === undefined ? null : scenarios.split(",").filter(Boolean),
    out: path.resolve(REPO_ROOT, value("out") ?? (smoke ? ".data/bench/smoke.json" : ".data/bench/latest.json")),
    databaseUrl: database === "none" ? null : database,
    profile,
    heap,
    // The docs show the default comparison only.
    docs:
      !flag("no-docs") &&
      !smoke &&
      !designs &&
      !profile &&
      !heap &&
      scenarios === undefined &&
      socketIoPublish === "emitter" &&
      socketIoStorm === "memory" &&
      !value("wave-clients") &&
      !value("storm-clients"),
    socketIoPublish: socketIoPublish as SocketIoPublish,
    socketIoStorm: socketIoStorm as Exclude<SocketIoAdapter, "redis">,
    soakSeconds: number("soak-seconds"),
    repetitions: number("repetitions"),
    waveClients: number("wave-clients"),
    stormClients: number("storm-clients"),
  };
}

/** The plan with the first-event wave's and the storm's clients as the options ask, spread evenly over their tenants. */
export function sizedPlan(plan: BenchPlan, options: Pick<BenchOptions, "waveClients" | "stormClients">): BenchPlan {
  const { firstEvent, reconnectStorm } = plan;
  return {
    ...plan,
    firstEvent: options.waveClients
      ? { ...firstEvent, subscribersPerTenant: Math.ceil(options.waveClients / firstEvent.tenants) }
      : firstEvent,
    reconnectStorm: options.stormClients
      ? { ...reconnectStorm, clientsPerTenant: Math.ceil(options.stormClients / reconnectStorm.tenants) }
      : reconnectStorm,
  };
}
