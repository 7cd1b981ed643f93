import { nowUs, routeEvent } from "./workload";

/** One step of offered load: `count` events at `rate` per second, numbered from `seqStart`. */
export interface LoadStep {
  rate: number;
  count: number;
  seqStart: number;
  tenants: number;
  runsPerTenant: number;
}

/** Publishes event `seq` for the run at (tenant, run); resolves false when the event was not delivered (Pulse's bus answered null). */
export type PublishOne = (seq: number, tenant: number, run: number, intendedUs: number) => Promise<boolean> | boolean;

export interface StepOutcome {
  published: number;
  /** Events the publisher was told would not be delivered. */
  dropped: number;
  failed: number;
  errors: string[];
  /** How far behind its schedule the last event was handed to its run's publisher (µs). */
  maxLagUs: number;
  /** From the first intended send time until every publish had answered (µs). */
  elapsedUs: number;
  cpuUs: number;
}

const START_DELAY_US = 20_000;

/**
 * Sends a step's events on a fixed schedule, whatever happens to earlier ones: event k is
 * due at start + k/rate and carries that intended time. Events of one run are published one
 * after another (as an agent's `await ctx.progress()` does), runs in parallel, so a slow
 * publish delays its run's next event and the delay shows in the measured latency instead
 * of slowing the schedule (no coordinated omission). Once `ended` aborts, no further event
 * is sent (a step that only has to last until something else is done).
 */
export async function runOpenLoop(
  step: LoadStep,
  publish: PublishOne,
  timeoutMs: number,
  ended?: AbortSignal,
): Promise<StepOutcome> {
  const cpuStart = process.cpuUsage();
  const outcome: StepOutcome = { published: 0, dropped: 0, failed: 0, errors: [], maxLagUs: 0, elapsedUs: 0, cpuUs: 0 };
  const chains = new Map<number, Promise<void>>();
  const intervalUs = 1e6 / step.rate;
  const startUs = nowUs() + START_DELAY_US;
  const send = (seq: number, intendedUs: number) => {
    const { tenant, run } = routeEvent(seq, step.tenants, step.runsPerTenant);
    const chain = tenant * step.runsPerTenant + run;
    const previous = chains.get(chain) ?? Promise.resolve();
    chains.set(
      chain,
      previous.then(async () => {
        try {
          const delivered = await publish(seq, tenant, run, intendedUs);
          if (delivered) outcome.published++;
          else outcome.dropped++;
        } catch (error) {
          outcome.failed++;
          if (outcome.errors.length < 5) outcome.errors.push(error instanceof Error ? error.message : String(error));
        }
      }),
    );
  };
  let k = 0;
  while (k < step.count && !ended?.aborted) {
    const now = nowUs();
    while (k < step.count && startUs + k * intervalUs <= now) {
      const intendedUs = Math.round(startUs + k * intervalUs);
      outcome.maxLagUs = Math.max(outcome.maxLagUs, now - intendedUs);
      send(step.seqStart + k, intendedUs);
      k++;
    }
    if (k >= step.count) break;
    const waitMs = (startUs + k * intervalUs - nowUs()) / 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.floor(waitMs))));
  }
  const settled = Promise.all(chains.values()).then(() => "done" as const);
  const timedOut = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), timeoutMs).unref());
  if ((await Promise.race([settled, timedOut])) === "timeout") {
    outcome.errors.push(`publishes still pending ${timeoutMs} ms after the schedule ended`);
  }
  outcome.elapsedUs = nowUs() - startUs;
  const cpu = process.cpuUsage(cpuStart);
  outcome.cpuUs = cpu.user + cpu.system;
  return outcome;
}

/**
 * A publisher process's open-loop steps, one at a time: the step running now can be ended
 * early (`end`), when the orchestrator only needed it to last until something was done.
 */
export class OpenLoopSteps {
  private current: AbortController | null = null;

  async run(step: LoadStep, publish: PublishOne, timeoutMs: number): Promise<StepOutcome> {
    const controller = new AbortController();
    this.current = controller;
    try {
      return await runOpenLoop(step, publish, timeoutMs, controller.signal);
    } finally {
      if (this.current === controller) this.current = null;
    }
  }

  end(): void {
    this.current?.abort();
  }
}

export interface ThroughputRun {
  durationMs: number;
  tenants: number;
  runsPerTenant: number;
  seqStart: number;
}

export interface ThroughputOutcome {
  published: number;
  failed: number;
  elapsedMs: number;
  eventsPerSecond: number;
  cpuUsPerEvent: number;
}

/**
 * As fast as one process can: every run publishes its next event as soon as the previous
 * one is answered, for `durationMs`. The figure is the publisher's ceiling (events/s one
 * worker process can publish), not a latency.
 */
export async function runClosedLoop(run: ThroughputRun, publish: PublishOne): Promise<ThroughputOutcome> {
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  const deadline = started + run.durationMs;
  const chains = run.tenants * run.runsPerTenant;
  let next = run.seqStart;
  let published = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: chains }, async (_, chain) => {
      const tenant = Math.floor(chain / run.runsPerTenant);
      const runIndex = chain % run.runsPerTenant;
      while (performance.now() < deadline) {
        // Numbers only label the events here: no client counts them.
        const seq = next++;
        try {
          if (await publish(seq, tenant, runIndex, nowUs())) published++;
        } catch {
          failed++;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuStart);
  return {
    published,
    failed,
    elapsedMs,
    eventsPerSecond: (published / elapsedMs) * 1000,
    cpuUsPerEvent: published > 0 ? (cpu.user + cpu.system) / published : 0,
  };
}
