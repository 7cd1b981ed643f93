import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { expect, inject, test } from "vitest";
import { skippedWithoutPostgres } from "../src/test/chaos/chaos-log";
import { README_END, README_START, writeBenchDocs } from "./bench-docs";
import { SMOKE_PLAN } from "./bench-plan";
import type { BenchResult } from "./bench-result";
import { interleavedOrder } from "./statistics";
import { DESIGNS, type Design } from "./workload";

const run = promisify(execFile);
const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/** Runs `npm run bench -- --smoke` with `args` and returns its JSON. */
async function smokeRun(args: string[]): Promise<BenchResult> {
  const out = path.join(os.tmpdir(), `pulse-bench-smoke-${randomUUID()}.json`);
  try {
    await run(
      process.execPath,
      [
        "--import",
        "tsx",
        "bench/run-bench.ts",
        "--smoke",
        `--out=${out}`,
        `--database-url=${inject("databaseUrl") || "none"}`,
        ...args,
      ],
      {
        cwd: REPO_ROOT,
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return JSON.parse(await readFile(out, "utf8")) as BenchResult;
  } finally {
    await rm(out, { force: true });
  }
}

/** Every step of every load scenario the run has: each event reached each of its tenant's subscribers exactly once. */
function expectEveryDelivery(result: BenchResult, designs: readonly Design[]): void {
  for (const scenario of result.scenarios) {
    const plan = SMOKE_PLAN.scenarios.find((p) => p.name === scenario.name)!;
    for (const connect of scenario.connect)
      expect(connect, `${plan.name} ${connect.design}`).toMatchObject({
        failed: 0,
        ready: plan.tenants * plan.subscribersPerTenant,
      });
    for (const design of designs) {
      const steps = scenario.steps.filter((s) => s.design === design);
      expect(
        steps.map((s) => s.offeredEventsPerSecond),
        `${plan.name} ${design}`,
      ).toEqual(plan.eventRates);
      for (const step of steps) {
        const what = `${plan.name} ${design} at ${step.offeredEventsPerSecond} events/s`;
        expect(step.expected, what).toBe(step.events * plan.subscribersPerTenant);
        // Progress a design coalesced (latest wins per run) counts as superseded, never as lost.
        expect(step.delivered + step.superseded, what).toBe(step.expected);
        expect(step, what).toMatchObject({
          missing: 0,
          duplicates: 0,
          foreign: 0,
          resyncs: 0,
          misordered: 0,
          closed: 0,
        });
        expect(step.publisher, what).toMatchObject({ published: step.events, dropped: 0, failed: 0 });
        expect(step.latency.count, what).toBe(step.delivered);
        for (const figure of [
          step.latency.p50,
          step.latency.p99,
          step.latency.p999,
          step.serverCpuUsPerDelivery,
          step.achievedDeliveriesPerSecond,
        ]) {
          expect(Number.isFinite(figure) && figure > 0, what).toBe(true);
        }
      }
    }
  }
}

/**
 * The statistics' path ran: each design with a maximum soaked at it (and lower, while it failed), Pulse's long soak,
 * the compared designs measured at each fraction of the weaker maximum, and the repeated summary has a median and spread
 * for each maximum and a verdict row per target. Figures are timings, never asserted.
 */
function expectRepeatedPath(result: BenchResult, designs: readonly Design[]): void {
  expect(result.repeated.repetitions).toBe(SMOKE_PLAN.repetitions);
  expect(result.repeated.spread).toBe("min–max");
  for (const scenario of result.scenarios) {
    const what = `${scenario.name} repetition ${scenario.repetition}`;
    const withMax = designs.filter((d) => scenario.steps.some((s) => s.design === d && s.passed));
    expect([...new Set(scenario.soaks.map((s) => s.design))].sort(), what).toEqual([...withMax].sort());
    // A soak that fails is tried again a step lower, at most soakStepsDown times; one that passes ends them.
    for (const design of withMax) {
      const soaks = scenario.soaks.filter((s) => s.design === design);
      expect(soaks.length, what).toBeLessThanOrEqual(1 + SMOKE_PLAN.soakStepsDown);
      expect(
        soaks.slice(0, -1).every((s) => !s.passed),
        what,
      ).toBe(true);
    }
    for (const soak of scenario.soaks) {
      expect(soak.delivered + soak.superseded, what).toBe(soak.expected);
      expect(soak.events, what).toBeGreaterThanOrEqual(
        Math.round((soak.offeredEventsPerSecond * SMOKE_PLAN.soakMs) / 1000),
      );
    }
    if (withMax.length === 0) continue;
    expect([...new Set(scenario.atLoads.map((s) => s.fraction))], what).toEqual(SMOKE_PLAN.comparisonFractions);
    for (const step of scenario.atLoads) {
      expect(step.missing + step.duplicates, what).toBe(0);
      expect(step.events, what).toBeGreaterThanOrEqual(SMOKE_PLAN.comparisonMinEvents);
    }
  }
  if (designs.includes("pulse")) {
    // The long soak: Pulse at half its median maximum, window after window, nothing lost.
    const soak = result.scenarios.find((s) => s.name === SMOKE_PLAN.longSoak.scenario)?.longSoak;
    expect(soak?.windows).toHaveLength(SMOKE_PLAN.longSoak.windows);
    for (const window of soak!.windows) expect(window.delivered + window.superseded).toBe(window.expected);
    expect(result.repeated.longSoak?.p99ByWindow).toHaveLength(SMOKE_PLAN.longSoak.windows);
  }
  for (const name of new Set(result.scenarios.map((s) => s.name))) {
    for (const design of designs)
      expect(result.repeated.scenarios[name]!.maxima, `${name} ${design}`).toHaveProperty(design);
    expect(result.repeated.targets.map((t) => t.name)).toContain(`${name}: max deliveries/s, Pulse ÷ Socket.IO`);
  }
}

/** Each design's subscribe wave of each repetition: every subscriber went live, and each time was recorded. */
function expectFirstEvents(result: BenchResult, designs: readonly Design[]): void {
  const plan = SMOKE_PLAN.firstEvent;
  const connections = plan.tenants * plan.subscribersPerTenant;
  expect(result.firstEvent!.map((w) => [w.repetition, w.design])).toEqual(
    Array.from({ length: SMOKE_PLAN.repetitions }, (_, r) => interleavedOrder(designs, r).map((d) => [r, d])).flat(),
  );
  for (const wave of result.firstEvent!) {
    expect(wave, wave.design).toMatchObject({ connections, live: connections, failed: 0 });
    expect(wave.publisher, wave.design).toMatchObject({ dropped: 0, failed: 0 });
    for (const times of [wave.connectMs, wave.subscribedMs, wave.firstEventMs]) {
      expect(times.count, wave.design).toBe(connections);
      expect(times.p99, wave.design).toBeGreaterThan(0);
    }
    // The wave's CPU: its server served every subscriber, so it used some.
    expect(wave.cpu?.seconds, wave.design).toBeGreaterThan(0);
    expect(wave.cpu?.serverCores, wave.design).toBeGreaterThan(0);
  }
  for (const design of designs) expect(result.repeated.firstEvent[design]?.firstEventP99?.n, design).toBe(1);
  expect(result.repeated.targets.map((t) => t.name)).toContain(
    "time to first event p99, Pulse ÷ Socket.IO's connect p99",
  );
}

/**
 * Each resuming design's storms: every client dropped by the server and back to live, and
 * none loses an event: Pulse's resume replays from the last tracked id, and nothing comes
 * twice; Socket.IO, on the Redis Streams adapter with connection-state recovery, recovers
 * every client's session and replays what it missed. Socket.IO's duplicates are measured,
 * not asserted: a live event the session's replay read can reach the restored socket again
 * through the adapter's stream reader, which the replay does not wait for.
 */
function expectReconnectStorms(result: BenchResult, withDatabase: boolean): void {
  const plan = SMOKE_PLAN.reconnectStorm;
  const clients = plan.tenants * plan.clientsPerTenant;
  const storms = result.reconnectStorm!;
  expect(storms.map((s) => [s.repetition, s.design, s.missedPerTenant])).toEqual(
    interleavedOrder(DESIGNS, 0)
      .filter((d) => d === "pulse" || d === "socket-io")
      .flatMap((d) => plan.missedPerTenant.map((missed) => [0, d, missed])),
  );
  for (const storm of storms) {
    const what = `${storm.design}, ${storm.missedPerTenant} missed`;
    expect(storm, what).toMatchObject({
      connections: clients,
      dropped: clients,
      stillOpen: 0,
      reconnected: clients,
      live: clients,
      foreign: 0,
      lost: 0,
      recovered: storm.design === "socket-io" ? clients : null,
    });
    if (storm.design === "pulse") expect(storm.duplicates, what).toBe(0);
    expect(storm.publisher.missed, what).toMatchObject({ published: plan.tenants * storm.missedPerTenant, failed: 0 });
    expect(storm.backToLiveMs.count, what).toBe(clients);
    expect(storm.database === null, what).toBe(storm.design !== "pulse" || !withDatabase);
    // The reconnects' CPU: the server took every client back, so it used some.
    expect(storm.cpu?.seconds, what).toBeGreaterThan(0);
    expect(storm.cpu?.serverCores, what).toBeGreaterThan(0);
  }
  expect(result.repeated.targets.map((t) => t.name)).toEqual(
    expect.arrayContaining([
      "reconnect storm, 10 missed: time until all live, Pulse ÷ Socket.IO",
      "reconnect storm, 100 missed: events Pulse lost or duplicated",
    ]),
  );
}

/** `npm run bench:docs` on the run's JSON, in a scratch copy of the docs: every section the run has is written. */
async function expectDocs(result: BenchResult): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), "pulse-bench-smoke-docs-"));
  try {
    await mkdir(path.join(root, "docs/bench"), { recursive: true });
    await writeFile(path.join(root, "docs/bench/smoke.json"), JSON.stringify(result));
    await writeFile(path.join(root, "README.md"), `# Pulse\n\n${README_START}\n${README_END}\n`);
    await writeBenchDocs("docs/bench/smoke.json", root);
    const markdown = await readFile(path.join(root, "docs/BENCHMARK.md"), "utf8");
    for (const name of SMOKE_PLAN.scenarios.map((s) => s.name)) {
      expect(markdown).toContain(`### Every step: ${name}`);
      expect(markdown).toContain(`### ${name}: maxima over 1 repetitions`);
    }
    expect(markdown).toContain("### time to first event on subscribe");
    expect(markdown).toContain("### reconnect storm, 100 events missed per tenant");
    expect(await readFile(path.join(root, "README.md"), "utf8")).toContain("(docs/bench/smoke.json)");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * `npm run bench` in smoke mode (seconds, a few subscribers per design): it still runs end
 * to end, every design delivers every event to every subscriber exactly once (Pulse
 * included, through its real worker publish path), and the JSON carries every figure the
 * report needs. Latencies are recorded, never asserted.
 */
test("the bench's smoke run delivers every event to every subscriber of every design, and reports every figure", async () => {
  const databaseUrl = inject("databaseUrl");
  const result = await smokeRun([]);

  expect(result.mode).toBe("smoke");
  expect(result.designs).toEqual([...DESIGNS]);
  expect(result.pulsePublisher).toBe(
    databaseUrl ? "worker process (PostgreSQL)" : "in the server process (PGlite: no PostgreSQL reachable)",
  );
  expect(result.socketIoPublish).toBe("emitter");
  // Every scenario once per repetition, the designs' order rotated from one to the next.
  const names = SMOKE_PLAN.scenarios.map((s) => s.name);
  expect(result.scenarios.map((s) => [s.repetition, s.name])).toEqual(
    Array.from({ length: SMOKE_PLAN.repetitions }, (_, r) => names.map((name) => [r, name])).flat(),
  );
  expect(result.scenarios.map((s) => s.order[0])).toEqual(
    result.scenarios.map((s) => interleavedOrder(DESIGNS, s.repetition)[0]),
  );
  expectEveryDelivery(result, DESIGNS);
  expectRepeatedPath(result, DESIGNS);
  expectFirstEvents(result, DESIGNS);
  expectReconnectStorms(result, !!databaseUrl);
  for (const design of DESIGNS) {
    const idle = result.idle.find((i) => i.design === design)!;
    const connections = SMOKE_PLAN.idle.sizes[0]!;
    expect(idle, design).toMatchObject({ connections, ready: connections, failed: 0, serverConnections: connections });
    expect(idle.broadcast, design).toMatchObject({
      expected: connections,
      delivered: connections,
      missing: 0,
      duplicates: 0,
    });
    expect(Number.isFinite(idle.heapPerConnection) && Number.isFinite(idle.rssPerConnection), design).toBe(true);
  }
  expect(result.publishThroughput?.published).toBeGreaterThan(0);
  expect(result.publishThroughput?.failed).toBe(0);
  expect(result.polling).toMatchObject({ failed: 0, clients: SMOKE_PLAN.polling.clients });
  expect(result.polling!.requests).toBeGreaterThan(0);
  expect(result.polling!.bytesPerMinutePerClient).toBeGreaterThan(0);
  for (const scenario of SMOKE_PLAN.scenarios) {
    // Present for every design; null when no step stayed under the p99 bound (a timing, never asserted).
    for (const design of DESIGNS)
      expect(result.summary.maxSustainable[scenario.name], `${scenario.name} ${design}`).toHaveProperty(design);
  }
  expect(result.summary.targets.map((t) => t.name)).toEqual(
    expect.arrayContaining([
      "wide: max sustainable deliveries/s, Pulse ÷ Socket.IO",
      "wide: p99 at 50% of the weaker maximum, Pulse ÷ Socket.IO",
      "narrow: max sustainable deliveries/s, Pulse ÷ floor",
      "heap per idle connection, Pulse ÷ Socket.IO",
      "concurrent subscribers on one Pulse API process",
    ]),
  );
  await expectDocs(result);
}, 300_000);

// The path is the publisher's choice alone (`competitorPublisher`); what a run can show is
// that the emitter's path delivers too, and that the JSON names the path it was asked for.
test.each(["bridge"])(
  "with --socket-io-publish=%s, Socket.IO still delivers every event, and the JSON names the path",
  async (path) => {
    const result = await smokeRun([
      "--only=socket-io",
      "--scenarios=narrow",
      "--repetitions=1",
      `--socket-io-publish=${path}`,
    ]);

    expect(result.socketIoPublish).toBe(path);
    expect(new Set(result.scenarios.map((s) => s.name))).toEqual(new Set(["narrow"]));
    expectEveryDelivery(result, ["socket-io"]);
  },
  300_000,
);

// Socket.IO "with persistence" writes to the PostgreSQL that Pulse's processes share; PGlite is one process's.
const databaseUrl = inject("databaseUrl");
test.skipIf(!databaseUrl)(
  `with --socket-io-publish=emitter-postgres, Socket.IO persists steps and logs and still delivers every event${skippedWithoutPostgres(databaseUrl)}`,
  async () => {
    const result = await smokeRun([
      "--only=socket-io",
      "--scenarios=narrow",
      "--repetitions=1",
      "--socket-io-publish=emitter-postgres",
    ]);

    expect(result.socketIoPublish).toBe("emitter-postgres");
    expectEveryDelivery(result, ["socket-io"]);
  },
  300_000,
);
