import type { EventBus } from "../../server/events/bus";
import type { AgentEventInput } from "../../server/events/schema";
import type { RunService } from "../../server/agents/run-service";

/** Roles of the runs the publisher drives; the composition that publishes must list them as external. */
export const FEED_ROLES = ["chaos-feed-a", "chaos-feed-b", "chaos-feed-c"] as const;

/** Events of one run before it completes and the lane starts the next run. */
const RUN_LENGTH = 240;
/** Every this many events a tenant's context file changes status. */
const CONTEXT_EVERY = 97;

export interface FeedPublisherOptions {
  bus: EventBus;
  runs: RunService;
  tenants: readonly string[];
  /** Events per second over all tenants. */
  rate: number;
  /** Stop after this many events (the scenario may stop it earlier). */
  limit?: number;
  /** Runs per tenant published at once (each run's events in order, runs in parallel); at most FEED_ROLES.length. */
  runsPerTenant?: number;
}

interface Lane {
  tenantId: string;
  role: string;
  run?: { runId: string; jobId: string; queue: string; events: number; steps: string[] };
  busy?: Promise<void>;
}

/**
 * Publishes a steady mix of agent events (active, progress, output, logs, steps, completed,
 * then a new run) and context changes through the real event bus, the way workers
 * elsewhere would, at a fixed rate. Each run's events go out one after the other, as an
 * agent's do; runs and tenants go in parallel.
 */
export class FeedPublisher {
  published = 0;
  failed = 0;
  readonly failures: string[] = [];
  private readonly lanes: Lane[];
  /** The lane the dispatcher looks at first next time. */
  private nextLane = 0;
  private running = false;
  private loop?: Promise<void>;
  private readonly contextVersion = new Map<string, number>();
  /** A tenant's context changes go out one after the other, as its one context file's writer would send them. */
  private readonly contextChain = new Map<string, Promise<void>>();

  constructor(private readonly options: FeedPublisherOptions) {
    const perTenant = Math.min(options.runsPerTenant ?? 2, FEED_ROLES.length);
    this.lanes = options.tenants.flatMap((tenantId) =>
      FEED_ROLES.slice(0, perTenant).map((role) => ({ tenantId, role })),
    );
  }

  get done(): boolean {
    return this.options.limit !== undefined && this.published + this.failed >= this.options.limit;
  }

  start(): this {
    this.running = true;
    this.loop = this.run();
    return this;
  }

  /** Stops publishing and waits for the events in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Completes every run still going, so none is left active when the scenario ends. */
  async finishRuns(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.busy ?? Promise.resolve()));
    for (const lane of this.lanes) {
      if (lane.run)
        await this.publish(lane, { type: "agent:completed", completedAt: new Date().toISOString() }).catch(
          (error: unknown) => this.fail(error),
        );
      lane.run = undefined;
    }
  }

  /** Resolves when `count` more events went out (or the publisher stopped). */
  async waitFor(count: number, timeoutMs = 60_000): Promise<void> {
    const target = this.published + count;
    const deadline = Date.now() + timeoutMs;
    while (this.running && this.published < target && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
  }

  private async run(): Promise<void> {
    const startedAt = Date.now();
    let dispatched = 0;
    while (this.running && !this.done) {
      const due = Math.floor(((Date.now() - startedAt) / 1000) * this.options.rate);
      // Far behind schedule (every lane busy) the rate is simply what the pipeline takes: no burst to catch up.
      if (due - dispatched > this.lanes.length * 2) dispatched = due - this.lanes.length;
      // Lanes take turns, starting after the last one served: first-free-first would hand
      // every event to the first tenant's lanes whenever they answer within a tick.
      for (let looked = 0; looked < this.lanes.length && dispatched < due; looked++) {
        const lane = this.lanes[this.nextLane]!;
        this.nextLane = (this.nextLane + 1) % this.lanes.length;
        if (lane.busy) continue;
        if (this.options.limit !== undefined && dispatched >= this.options.limit) break;
        dispatched += 1;
        lane.busy = this.step(lane).finally(() => (lane.busy = undefined));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(this.lanes.map((lane) => lane.busy ?? Promise.resolve()));
  }

  /** The lane's next event: a new run when it has none, a context change now and then, else the run's next step. */
  private async step(lane: Lane): Promise<void> {
    try {
      if (!lane.run) {
        const started = await this.options.runs.start(lane.tenantId, lane.role);
        lane.run = { runId: started.id, jobId: started.jobId, queue: started.queue, events: 0, steps: [] };
        this.published += 1;
        await this.publish(lane, { type: "agent:active", startedAt: new Date().toISOString() });
        return;
      }
      const run = lane.run;
      run.events += 1;
      const n = run.events;
      if ((this.published + 1) % CONTEXT_EVERY === 0) {
        const version = (this.contextVersion.get(lane.tenantId) ?? 0) + 1;
        this.contextVersion.set(lane.tenantId, version);
        const publish = () =>
          this.counted(() =>
            this.options.bus.publish({
              type: "context:status_changed",
              tenantId: lane.tenantId,
              status: version % 2 ? "generating" : "completed",
              version,
            }),
          );
        const next = (this.contextChain.get(lane.tenantId) ?? Promise.resolve()).then(publish, publish);
        this.contextChain.set(
          lane.tenantId,
          next.catch(() => {}),
        );
        await next;
        return;
      }
      if (n >= RUN_LENGTH) {
        await this.publish(lane, { type: "agent:completed", completedAt: new Date().toISOString() });
        lane.run = undefined;
        return;
      }
      switch (n % 10) {
        case 7:
          await this.publish(lane, { type: "agent:output", chunk: `chunk ${n}; ` });
          return;
        case 8:
          await this.publish(lane, { type: "agent:log", level: "info", message: `log line ${n}` });
          return;
        case 9: {
          // Steps open and close in turn, so runs carry both finished and running ones.
          const open = run.steps.pop();
          const stepId = open ?? `${run.runId}:1:${n}`;
          if (!open) run.steps.push(stepId);
          await this.publish(lane, {
            type: "agent:step",
            stepId,
            name: `step ${stepId.slice(-4)}`,
            status: open ? "completed" : "started",
          });
          return;
        }
        default:
          await this.publish(lane, {
            type: "agent:progress",
            progress: n % 100,
            phase: "running",
            message: `progress ${n}`,
          });
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private fail(error: unknown): void {
    this.failed += 1;
    if (this.failures.length < 5) this.failures.push(String((error as Error).message ?? error));
  }

  private async publish(
    lane: Lane,
    event: DistributiveOmit<AgentEventInput, "tenantId" | "runId" | "jobId" | "queue" | "agentRole" | "attempt">,
  ): Promise<void> {
    const run = lane.run!;
    await this.counted(
      () =>
        this.options.bus.publish({
          ...event,
          tenantId: lane.tenantId,
          runId: run.runId,
          jobId: run.jobId,
          queue: run.queue,
          agentRole: lane.role,
          attempt: 1,
        } as AgentEventInput),
      async () => {
        const row = await this.options.runs.get(lane.tenantId, run.runId).catch(() => null);
        return `${event.type} of run ${run.runId} (now ${row?.status ?? "missing"}${row?.error ? `: ${row.error}` : ""})`;
      },
    );
  }

  private async counted(
    publish: () => Promise<unknown>,
    describe: () => Promise<string> = async () => "a context change",
  ): Promise<void> {
    const result = await publish();
    if (result === null) throw new Error(`the bus dropped ${await describe()} as no longer applying`);
    this.published += 1;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
