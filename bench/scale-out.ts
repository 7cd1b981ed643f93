import { logEventPayload } from "../src/test/log-event-payload";
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { createLogger } from "../src/server/logger";
import { PrivateRedisServer } from "../src/server/private-redis-server";
import { connectRedis } from "../src/server/redis";
import { TenantEventStream, TenantStreamKeys } from "../src/server/events/event-stream";
import { TenantStreamReader } from "../src/server/events/stream-reader";
import { redisCpuSeconds } from "./bench-harness";
import { sleep } from "./bench-log";

/**
 * What scaling out costs Redis and each API process (issue #16), for docs/BENCHMARK.md.
 * `npm run bench:scale-out` runs both parts, each figure the median of `REPEATS` passes on
 * a fresh private Redis (with its spread), prints each and writes docs/SCALE-OUT.md with its
 * JSON beside it (`--out=<file>`: the JSON there, and no doc):
 *
 * - idle: Redis CPU and process CPU per second while one reader follows 1k, 10k or 50k idle
 *   tenants (each with a stream): what the safety checks cost when nothing happens;
 * - fan-out: Redis output bytes and process CPU per second at a fixed event rate over 400
 *   tenants, with 1, 4 and 8 readers (one per API process) each following its own share,
 *   for the two designs in the same run: per-tenant sharded wake channels (Pulse's reader)
 *   and one global channel every process subscribes to (Pulse before, and Socket.IO's Redis
 *   adapter): the same appends, each also PUBLISHed on one channel, decoded by every
 *   subscriber as a reader would.
 */

const MEASURE_MS = 8_000;
const REPEATS = 3;
const IDLE_TENANTS = [1_000, 10_000, 50_000];
const PROCESSES = [1, 4, 8];
const FANOUT_TENANTS = 400;
const FANOUT_EVENTS_PER_SECOND = 1_000;

const logger = createLogger("silent");
const quiet = { receive: () => {}, lost: () => {} };
const event = (tenantId: string, n: number) => logEventPayload(tenantId, `m${n}`, n);

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
  const reader = new TenantStreamReader({
    readRedis: read!,
    wakeRedis: wake!,
    controlRedis: bench.admin,
    stream: bench.stream,
    logger,
  });
  reader.start();
  bench.readers.push(reader);
  for (let start = 0; start < tenants.length; start += 1_000)
    await Promise.all(tenants.slice(start, start + 1_000).map((t) => reader.subscribe(t, quiet)));
}

/** Redis CPU, process CPU (ms per second) and Redis output bytes per second over `ms`. */
async function measure(admin: Redis, ms: number, during?: Promise<void>) {
  const outputBytes = async () => Number(/total_net_output_bytes:(\d+)/.exec(await admin.info("stats"))?.[1] ?? 0);
  const [redisCpu, bytes, cpu] = [await redisCpuSeconds(admin), await outputBytes(), process.cpuUsage()];
  await (during ?? sleep(ms));
  const used = process.cpuUsage(cpu);
  return {
    redisCpuMsPerS: (((await redisCpuSeconds(admin)) - redisCpu) * 1e6) / ms,
    processCpuMsPerS: (used.user + used.system) / ms,
    outputBytesPerS: (((await outputBytes()) - bytes) * 1000) / ms,
  };
}

async function idle(tenantCount: number): Promise<Figures> {
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
    return {
      redisCpuMsPerS: Math.max(0, cost.redisCpuMsPerS - baseline.redisCpuMsPerS),
      processCpuMsPerS: cost.processCpuMsPerS,
    };
  } finally {
    await closeBench(bench);
  }
}

/** Appends at a fixed rate over `tenants`, round robin, for `ms`. */
async function publish(
  stream: TenantEventStream,
  tenants: string[],
  ms: number,
  global?: { redis: Redis; channel: string },
): Promise<void> {
  const perTick = FANOUT_EVENTS_PER_SECOND / 100;
  let n = 0;
  const appends: Promise<unknown>[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    for (let i = 0; i < perTick; i++, n++) {
      const t = tenants[n % tenants.length]!;
      const payload = event(t, n);
      appends.push(stream.append(t, payload));
      if (global) appends.push(global.redis.publish(global.channel, `${t}\n${payload}`));
    }
    await sleep(10);
  }
  await Promise.all(appends);
}

/** Subscribers of one global channel, each decoding every message as a reader would. */
async function addGlobalSubscribers(bench: Bench, channel: string, count: number, tenants: string[][]): Promise<void> {
  for (let p = 0; p < count; p++) {
    const own = new Set(tenants[p]);
    const subscriber = connectRedis(bench.redis.url, "bench-global");
    bench.connections.push(subscriber);
    subscriber.on("message", (_channel: string, message: string) => {
      const newline = message.indexOf("\n");
      if (own.has(message.slice(0, newline))) JSON.parse(message.slice(newline + 1));
    });
    await subscriber.subscribe(channel);
  }
}

async function fanout(processes: number, design: Design): Promise<Figures> {
  const bench = await openBench();
  try {
    const tenants = Array.from({ length: FANOUT_TENANTS }, (_, i) => `fan-${i}`);
    const shares = Array.from({ length: processes }, (_, p) => tenants.filter((_, i) => i % processes === p));
    const channel = `${bench.keys.events("x")}:global`;
    // Both designs append the same (with its sharded wake); the global one also publishes each event once more.
    for (const share of shares) await addReader(bench, design === "per-tenant" ? share : []);
    if (design === "global") await addGlobalSubscribers(bench, channel, processes, shares);
    await sleep(2_000);
    const cost = await measure(
      bench.admin,
      MEASURE_MS,
      publish(bench.stream, tenants, MEASURE_MS, design === "global" ? { redis: bench.admin, channel } : undefined),
    );
    return cost;
  } finally {
    await closeBench(bench);
  }
}

type Design = "per-tenant" | "global";
interface Figures {
  redisCpuMsPerS: number;
  processCpuMsPerS: number;
  outputBytesPerS?: number;
}
interface Summary {
  median: number;
  min: number;
  max: number;
}

function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 100) / 100;
  return { median: round(sorted[Math.floor(sorted.length / 2)]!), min: round(sorted[0]!), max: round(sorted.at(-1)!) };
}

async function repeated(run: () => Promise<Figures>) {
  const passes: Figures[] = [];
  for (let i = 0; i < REPEATS; i++) passes.push(await run());
  return {
    redisCpuMsPerS: summarize(passes.map((p) => p.redisCpuMsPerS)),
    processCpuMsPerS: summarize(passes.map((p) => p.processCpuMsPerS)),
    ...(passes[0]!.outputBytesPerS === undefined
      ? {}
      : { outputKBPerS: summarize(passes.map((p) => p.outputBytesPerS! / 1024)) }),
  };
}

const show = (s: Summary) => `${s.median} (${s.min}–${s.max})`;
const out = process.argv.find((a) => a.startsWith("--out="))?.slice(6) ?? "docs/benchmark-scale-out.json";
const idleRows = [];
for (const tenants of IDLE_TENANTS) {
  const row = { tenants, ...(await repeated(() => idle(tenants))) };
  idleRows.push(row);
  console.log(
    `idle ${tenants} tenants: Redis CPU ${show(row.redisCpuMsPerS)} ms/s, process CPU ${show(row.processCpuMsPerS)} ms/s`,
  );
}
const fanoutRows = [];
for (const processes of PROCESSES) {
  for (const design of ["global", "per-tenant"] as const) {
    const row = {
      processes,
      design,
      eventsPerS: FANOUT_EVENTS_PER_SECOND,
      tenants: FANOUT_TENANTS,
      ...(await repeated(() => fanout(processes, design))),
    };
    fanoutRows.push(row);
    console.log(
      `fan-out ${processes} processes, ${design}: Redis output ${show(row.outputKBPerS!)} KB/s, Redis CPU ${show(row.redisCpuMsPerS)} ms/s, processes' CPU ${show(row.processCpuMsPerS)} ms/s`,
    );
  }
}
const result = {
  at: new Date().toISOString(),
  cpus: os.cpus().length,
  loadAverage: +os.loadavg()[0]!.toFixed(1),
  repeats: REPEATS,
  measureMs: MEASURE_MS,
  idle: idleRows,
  fanout: fanoutRows,
};
await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
if (!process.argv.some((a) => a.startsWith("--out=")))
  await writeFile("docs/SCALE-OUT.md", scaleOutMarkdown(result, path.basename(out)));
console.log(`wrote ${out}`);

/** docs/SCALE-OUT.md: the figures of this run, each a median with its range. */
function scaleOutMarkdown(r: typeof result, json: string): string {
  const cell = (s: Summary) => `${s.median} (${s.min}–${s.max})`;
  const fanout = (processes: number, design: Design) =>
    r.fanout.find((f) => f.processes === processes && f.design === design)!;
  return `# Scale-out figures

Written by \`npm run bench:scale-out\` (\`bench/scale-out.ts\`) on ${r.at.slice(0, 10)}, ${r.cpus} cores;
the JSON is [${json}](${json}). Each figure is the median of ${r.repeats} passes of ${r.measureMs / 1000} s,
each on a fresh private Redis, with the lowest and highest in brackets. The machine's load
average was ${r.loadAverage} at the end (above its ${r.cpus} cores, other work shared the CPU, and
CPU figures are noisier than output bytes).

## What following idle tenants costs

One stream reader (an API process's) follows tenants that each have a stream and publish
nothing: what remains is its safety check, a rolling read of at most 1,000 streams a second.

| followed idle tenants | Redis CPU ms/s | reader process CPU ms/s |
| ---: | ---: | ---: |
${r.idle.map((row) => `| ${row.tenants.toLocaleString("en-US")} | ${cell(row.redisCpuMsPerS)} | ${cell(row.processCpuMsPerS)} |`).join("\n")}

## What each API process receives

${FANOUT_EVENTS_PER_SECOND.toLocaleString("en-US")} events a second over ${FANOUT_TENANTS} tenants, and 1, 4 or 8 readers (one per API
process), each following its own share of the tenants. Two designs in the same run:
per-tenant sharded wake channels (Pulse: a process hears only the tenants it serves), and one
global channel every process subscribes to and decodes (Pulse before issue #16, and
Socket.IO's Redis adapter). Process CPU is the bench process's: the publisher and every reader.

| API processes | Redis output KB/s, global | per-tenant | Redis CPU ms/s, global | per-tenant | process CPU ms/s, global | per-tenant |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${PROCESSES.map((p) => {
  const [g, t] = [fanout(p, "global"), fanout(p, "per-tenant")];
  return `| ${p} | ${cell(g.outputKBPerS!)} | ${cell(t.outputKBPerS!)} | ${cell(g.redisCpuMsPerS)} | ${cell(t.redisCpuMsPerS)} | ${cell(g.processCpuMsPerS)} | ${cell(t.processCpuMsPerS)} |`;
}).join("\n")}
`;
}
