import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { createLogger } from "../server/logger";
import { connectRedis, PrivateRedisServer } from "../server/redis";
import { TenantEventStream, TenantStreamKeys } from "../server/events/event-stream";
import { TenantStreamReader } from "../server/events/stream-reader";
import { redisCpuSeconds } from "./bench-harness";
import { sleep } from "./bench-log";

/**
 * What the stream reader costs, for docs/BENCHMARK.md, each figure on a fresh private Redis:
 *
 * - `tsx src/bench/reader-cost.ts idle 1000 10000 50000`: Redis and process CPU per second
 *   while one reader follows that many idle tenants (each with a stream);
 * - `tsx src/bench/reader-cost.ts fanout 1 4 8`: Redis output bytes and process CPU per
 *   second at a fixed event rate over 400 tenants, with that many readers (one per API
 *   process) each following its own share of them.
 *
 * Only the reader's public constructor and `subscribe` are used, so the same file measures
 * an older revision's reader when copied into its tree.
 */

const MEASURE_MS = 10_000;
const FANOUT_TENANTS = 400;
const FANOUT_EVENTS_PER_SECOND = 1_000;

const logger = createLogger("silent");
const quiet = { receive: () => {}, lost: () => {} };
const event = (tenantId: string, n: number) =>
  JSON.stringify({ type: "agent:log", tenantId, runId: "r", jobId: "r", queue: "q", agentRole: "q", attempt: 1, level: "info", message: `m${n}`, seq: n, at: new Date().toISOString() });

interface Bench {
  redis: PrivateRedisServer;
  admin: Redis;
  stream: TenantEventStream;
  keys: TenantStreamKeys;
  connections: Redis[];
  readers: TenantStreamReader[];
}

async function openBench(): Promise<Bench> {
  const redis = await new PrivateRedisServer().start();
  const admin = connectRedis(redis.url, "bench-admin");
  const keys = new TenantStreamKeys(`bench-${randomUUID().slice(0, 8)}`);
  const stream = new TenantEventStream(admin, keys, { maxAgeMs: 3_600_000, minEvents: 100, maxEvents: 10_000 });
  return { redis, admin, stream, keys, connections: [admin], readers: [] };
}

async function closeBench(bench: Bench): Promise<void> {
  await Promise.all(bench.readers.map((r) => r.stop()));
  bench.connections.forEach((c) => c.disconnect());
  await bench.redis.stop();
}

/** A reader with connections of its own (as an API process has), following `tenants`. */
async function addReader(bench: Bench, tenants: string[]): Promise<void> {
  const [read, wake] = ["read", "wake"].map((name) => connectRedis(bench.redis.url, `bench-${name}`));
  bench.connections.push(read!, wake!);
  const reader = new TenantStreamReader({ readRedis: read!, wakeRedis: wake!, controlRedis: bench.admin, stream: bench.stream, logger });
  reader.start();
  bench.readers.push(reader);
  for (let start = 0; start < tenants.length; start += 1_000) await Promise.all(tenants.slice(start, start + 1_000).map((t) => reader.subscribe(t, quiet)));
}

/** Redis CPU, process CPU (ms per second) and Redis output bytes per second over `ms`. */
async function measure(admin: Redis, ms: number, during?: Promise<void>) {
  const outputBytes = async () => Number(/total_net_output_bytes:(\d+)/.exec(await admin.info("stats"))?.[1] ?? 0);
  const [redisCpu, bytes, cpu] = [await redisCpuSeconds(admin), await outputBytes(), process.cpuUsage()];
  await (during ?? sleep(ms));
  const used = process.cpuUsage(cpu);
  return {
    redisCpuMsPerS: ((await redisCpuSeconds(admin)) - redisCpu) * 1e6 / ms,
    processCpuMsPerS: (used.user + used.system) / ms,
    outputBytesPerS: ((await outputBytes()) - bytes) * 1000 / ms,
  };
}

async function idle(tenantCount: number): Promise<void> {
  const bench = await openBench();
  try {
    const tenants = Array.from({ length: tenantCount }, (_, i) => `idle-${i}`);
    for (let start = 0; start < tenants.length; start += 5_000) {
      const appends = bench.admin.pipeline();
      for (const t of tenants.slice(start, start + 5_000)) appends.xadd(bench.keys.events(t), "*", "e", event(t, 0));
      await appends.exec();
    }
    const baseline = await measure(bench.admin, MEASURE_MS / 2);
    await addReader(bench, tenants);
    // The reads every new tenant gets are over, and a rolling check under way.
    await sleep(3_000);
    const cost = await measure(bench.admin, MEASURE_MS);
    console.log(JSON.stringify({ mode: "idle", tenants: tenantCount, redisCpuMsPerS: +(cost.redisCpuMsPerS - baseline.redisCpuMsPerS).toFixed(3), processCpuMsPerS: +cost.processCpuMsPerS.toFixed(3) }));
  } finally {
    await closeBench(bench);
  }
}

/** Appends at a fixed rate over `tenants`, round robin, for `ms`. */
async function publish(stream: TenantEventStream, tenants: string[], ms: number): Promise<void> {
  const perTick = FANOUT_EVENTS_PER_SECOND / 100;
  let n = 0;
  const appends: Promise<unknown>[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    for (let i = 0; i < perTick; i++, n++) {
      const t = tenants[n % tenants.length]!;
      appends.push(stream.append(t, event(t, n)));
    }
    await sleep(10);
  }
  await Promise.all(appends);
}

async function fanout(processes: number): Promise<void> {
  const bench = await openBench();
  try {
    const tenants = Array.from({ length: FANOUT_TENANTS }, (_, i) => `fan-${i}`);
    for (let p = 0; p < processes; p++) await addReader(bench, tenants.filter((_, i) => i % processes === p));
    await sleep(2_000);
    const cost = await measure(bench.admin, MEASURE_MS, publish(bench.stream, tenants, MEASURE_MS));
    console.log(JSON.stringify({ mode: "fanout", processes, eventsPerS: FANOUT_EVENTS_PER_SECOND, outputKBPerS: +(cost.outputBytesPerS / 1024).toFixed(1), redisCpuMsPerS: +cost.redisCpuMsPerS.toFixed(2), processCpuMsPerS: +cost.processCpuMsPerS.toFixed(1) }));
  } finally {
    await closeBench(bench);
  }
}

const [mode, ...counts] = process.argv.slice(2);
for (const count of counts.map(Number)) {
  if (mode === "idle") await idle(count);
  else if (mode === "fanout") await fanout(count);
  else throw new Error("usage: reader-cost.ts idle|fanout <count>...");
}
