import type { EventInput } from "../src/server/events/schema";

/**
 * The bench's workload, the same for every design: realistic agent events (~200 B of JSON:
 * mostly progress with a message, some steps and logs) that carry their sequence number and
 * the time the open-loop schedule meant to send them, so a client anywhere on the machine
 * measures end-to-end latency from the intended time (no coordinated omission).
 */

/** The four designs the bench compares. */
export const DESIGNS = ["pulse", "socket-io", "sse", "ws-floor"] as const;
export type Design = (typeof DESIGNS)[number];

export const DESIGN_TITLES: Record<Design, string> = {
  pulse: "Pulse (tRPC over ws, Redis stream)",
  "socket-io": "Socket.IO + Redis adapter",
  sse: "SSE on node:http + Redis pub/sub",
  "ws-floor": "plain ws + Redis pub/sub (floor)",
};

/**
 * How the Socket.IO design's events reach its servers. `emitter` (the default): straight
 * from the worker with `@socket.io/redis-emitter`, the cheapest path Socket.IO has, and
 * nothing persisted ("without persistence"). `emitter-postgres`: the same, after the worker
 * has written the event to the run's steps/logs table in the same PostgreSQL as Pulse's
 * ("with persistence", Pulse's like for like). `bridge`: seed 000's design, BullMQ and a
 * QueueEvents bridge in the API process (emitting with `io.local`, so the one node does
 * not publish and decode its own echo through the adapter).
 */
export const SOCKET_IO_PUBLISH = ["emitter", "emitter-postgres", "bridge"] as const;
export type SocketIoPublish = (typeof SOCKET_IO_PUBLISH)[number];

/**
 * The adapter the Socket.IO design's servers run with. `redis` (`@socket.io/redis-adapter`,
 * fed by `@socket.io/redis-emitter` or the bridge): the cheapest path, for the load
 * scenarios; it keeps no session, so connection-state recovery cannot apply. For the
 * reconnect storm, the two setups in which Socket.IO's connection-state recovery applies:
 * `memory` (the default in-memory adapter, one node, the events bridged in from a Redis
 * pub/sub channel per tenant: recovery at its cheapest, but a single server) and
 * `redis-streams` (`@socket.io/redis-streams-adapter`: what a Socket.IO user with several
 * nodes who wants reconnecting clients to get what they missed deploys).
 *
 * @see https://socket.io/docs/v4/connection-state-recovery
 */
export const SOCKET_IO_ADAPTERS = ["redis", "memory", "redis-streams"] as const;
export type SocketIoAdapter = (typeof SOCKET_IO_ADAPTERS)[number];

/**
 * The Redis Streams adapter's options, the same in the server and in the worker that
 * publishes through it (the XADD that trims the stream runs where the event is emitted).
 * The adapter keeps one stream for every tenant's events and trims it to about `maxLen`
 * entries (10,000 by default); a session is recovered only while the entry at its offset is
 * still there, and the full storm alone publishes 100 tenants × 100 missed events, then live
 * ones. Sized as an operator would for a deploy's outage: ten times that, about 40 MB of
 * Redis at the bench's event size.
 *
 * @see https://github.com/socketio/socket.io-redis-streams-adapter#options
 */
export const SOCKET_IO_STREAMS_OPTIONS = { maxLen: 100_000 } as const;

/**
 * Microseconds on CLOCK_MONOTONIC: one clock for every process on the machine, so the
 * publisher's intended times and the clients' receive times can be subtracted.
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The run an event belongs to (as Pulse's workers would report it). */
export interface RunTarget {
  tenantId: string;
  runId: string;
  jobId: string;
  queue: string;
  agentRole: string;
}

/** One tenant of a scenario: its runs, and a token per subscriber connection. */
export interface BenchTenant {
  tenantId: string;
  runs: RunTarget[];
  tokens: string[];
}

export const BENCH_ROLES = [
  "client-researcher",
  "competitor-researcher",
  "context-file-writer",
  "strategy-writer",
] as const;

/**
 * The marker `#b<seq>@<intendedUs>` rides inside the event's human text (the progress or
 * log message, the step name), a field the schema already allows, so no design needs a
 * field of its own and every client finds it in the raw frame without parsing JSON.
 */
export const MARKER_PREFIX = "#b";
const MARKER_BYTES = Buffer.from(MARKER_PREFIX);
const AT = 0x40; // "@"
const ZERO = 0x30;
const NINE = 0x39;

export function marker(seq: number, intendedUs: number): string {
  return `${MARKER_PREFIX}${seq}@${intendedUs}`;
}

/** Parses a marker from a string (official clients, which decode the event first). */
export function parseMarker(text: string): { seq: number; intendedUs: number } | null {
  const at = text.indexOf(MARKER_PREFIX);
  if (at < 0) return null;
  const match = /^#b(\d+)@(\d+)/.exec(text.slice(at));
  return match ? { seq: Number(match[1]), intendedUs: Number(match[2]) } : null;
}

/**
 * Calls `found(seq, intendedUs)` for every marker in `bytes[from, to)`: the lean clients'
 * whole parsing of a frame.
 */
export function scanMarkers(
  bytes: Buffer,
  found: (seq: number, intendedUs: number) => void,
  from = 0,
  to = bytes.length,
): number {
  let count = 0;
  let at = bytes.indexOf(MARKER_BYTES, from);
  while (at >= 0 && at < to) {
    let i = at + MARKER_BYTES.length;
    let seq = 0;
    let digits = 0;
    for (; i < to; i++) {
      const c = bytes[i]!;
      if (c < ZERO || c > NINE) break;
      seq = seq * 10 + (c - ZERO);
      digits++;
    }
    if (digits > 0 && bytes[i] === AT) {
      let intended = 0;
      let timeDigits = 0;
      for (i += 1; i < to; i++) {
        const c = bytes[i]!;
        if (c < ZERO || c > NINE) break;
        intended = intended * 10 + (c - ZERO);
        timeDigits++;
      }
      if (timeDigits > 0) {
        found(seq, intended);
        count++;
      }
    }
    at = bytes.indexOf(MARKER_BYTES, i);
  }
  return count;
}

const SOURCES = [
  "the pricing page",
  "competitor blogs",
  "the annual report",
  "customer reviews",
  "the press kit",
  "job postings",
];

/**
 * Event number `seq` of the workload, for one run: 80% `agent:progress` with a message,
 * 10% `agent:step`, 10% `agent:log`, in Pulse's own schema (the input a worker publishes).
 */
export function benchEvent(seq: number, run: RunTarget, intendedUs: number): EventInput {
  const base = {
    tenantId: run.tenantId,
    runId: run.runId,
    jobId: run.jobId,
    queue: run.queue,
    agentRole: run.agentRole,
    attempt: 1,
  };
  const mark = marker(seq, intendedUs);
  switch (eventKind(seq)) {
    case "step":
      return {
        ...base,
        type: "agent:step",
        stepId: `${run.runId}:s${(seq >> 4) % 4}`,
        name: `Summarise ${SOURCES[seq % SOURCES.length]} ${mark}`,
        status: "started",
      };
    case "log":
      return {
        ...base,
        type: "agent:log",
        level: "info",
        message: `fetched ${SOURCES[seq % SOURCES.length]} (${(seq % 90) + 10} kB) ${mark}`,
      };
    case "progress":
      return {
        ...base,
        type: "agent:progress",
        progress: seq % 100,
        phase: "running",
        message: `Reading ${SOURCES[seq % SOURCES.length]}: ${(seq % 40) + 1} of 40 ${mark}`,
      };
  }
}

/**
 * The delivered form of an event for the designs that have no database stamp of their own:
 * the same fields Pulse's bus adds (`seq`, `at`), so every design carries the same bytes.
 */
export function stampedEvent(event: EventInput, seq: number): Record<string, unknown> {
  return { ...event, seq, at: new Date().toISOString() };
}

/**
 * Which kind event `seq` is: 80% progress, 10% step, 10% log. A multiplicative hash of the
 * number rather than `seq % 10`, so every tenant and run gets the same mix whatever the
 * number of tenants the events are dealt to.
 */
export function eventKind(seq: number): "progress" | "step" | "log" {
  // The product's high bits are the well-mixed ones (Knuth's multiplicative hashing).
  const bucket = Math.floor(((Math.imul(seq, 2654435761) >>> 0) / 2 ** 32) * 10);
  return bucket === 3 ? "step" : bucket === 7 ? "log" : "progress";
}

/** True for the events `benchEvent` makes `agent:progress`: the ones a design may coalesce, latest wins. */
export function isProgressEvent(seq: number): boolean {
  return eventKind(seq) === "progress";
}

/** The tenant (index) event `seq` goes to, and which of its runs reports it. */
export function routeEvent(seq: number, tenants: number, runsPerTenant: number): { tenant: number; run: number } {
  return { tenant: seq % tenants, run: Math.floor(seq / tenants) % runsPerTenant };
}

/** Channel the SSE and plain-ws designs publish a tenant's events on. */
export function tenantChannel(design: Exclude<Design, "pulse">, tenantId: string): string {
  return `bench:${design}:{${tenantId}}`;
}
