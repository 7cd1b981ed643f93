import { DeliveryLedger } from "./delivery-ledger";
import { measureFirstEvents, type FirstEventWave } from "./first-event";
import { StormClients, type StormClientsInit } from "./reconnect-storm";
import type { StormRange } from "./storm-ledger";
import { answerRequests } from "./ipc";
import { connectLean, loopbackSource, type BenchConnection, type DeliverySink } from "./lean-clients";
import { connectOfficial } from "./official-clients";
import { measurePollingCost } from "./polling-cost";
import { exitSoon } from "./servers/server-stats";
import { nowUs, type Design } from "./workload";

/**
 * The bench's client process: holds every design's subscriber connections (a few through
 * the official client library, the rest lean) and counts what each receives per step.
 * Kept apart from the servers so their CPU figures are theirs alone; one step runs at a
 * time, so its CPU figure is that step's design's.
 */
export interface ClientsInit {
  design: Design;
  baseUrl: string;
  /** One entry per connection: its tenant (index) and token. */
  connections: { tenant: number; token: string }[];
  /** How many of them use the official client library. */
  official: number;
  /** Connections opened at once. */
  concurrency: number;
}

export interface ConnectOutcome {
  ready: number;
  failed: number;
  errors: string[];
  elapsedMs: number;
}

/** One design's open subscribers and what they received in the current step. */
interface Subscribers {
  connections: BenchConnection[];
  ledger: DeliveryLedger;
  cpuAtBegin: NodeJS.CpuUsage;
}

const designs = new Map<Design, Subscribers>();
const storms = new Map<Design, StormClients>();

function storm(design: Design): StormClients {
  const found = storms.get(design);
  if (!found) throw new Error(`clients: no ${design} storm clients (storm-connect first)`);
  return found;
}

function closeAll(design: Design): void {
  for (const connection of designs.get(design)?.connections ?? []) connection?.close();
  designs.delete(design);
}

async function connectAll(init: ClientsInit): Promise<ConnectOutcome> {
  closeAll(init.design);
  const started = performance.now();
  const ledger = new DeliveryLedger(init.connections.map((c) => c.tenant));
  const connections = new Array<BenchConnection>(init.connections.length);
  designs.set(init.design, { connections, ledger, cpuAtBegin: process.cpuUsage() });
  const outcome: ConnectOutcome = { ready: 0, failed: 0, errors: [], elapsedMs: 0 };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(init.concurrency, init.connections.length) }, async () => {
      while (next < init.connections.length) {
        const index = next++;
        const spec = init.connections[index]!;
        const sink: DeliverySink = {
          event: (seq, intendedUs) => ledger.record(index, seq, intendedUs, nowUs()),
          resync: () => ledger.resynced(),
          closed: () => ledger.connectionClosed(),
          misordered: () => ledger.misordered(),
        };
        const connection =
          index < init.official
            ? connectOfficial(init.design, init.baseUrl, spec.token, sink)
            : connectLean(init.design, init.baseUrl, spec.token, sink, loopbackSource(index));
        connections[index] = connection;
        const timeout = new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("not ready within 30 s")), 30_000).unref(),
        );
        try {
          await Promise.race([connection.ready, timeout]);
          outcome.ready++;
        } catch (error) {
          outcome.failed++;
          if (outcome.errors.length < 5) outcome.errors.push(error instanceof Error ? error.message : String(error));
        }
      }
    }),
  );
  outcome.elapsedMs = performance.now() - started;
  return outcome;
}

function subscribers(design: Design): Subscribers {
  const found = designs.get(design);
  if (!found) throw new Error(`clients: no ${design} subscribers (connect first)`);
  return found;
}

answerRequests({
  connect: (init: ClientsInit) => connectAll(init),
  begin(range: {
    design: Design;
    seqStart: number;
    seqEnd: number;
    tenants: number;
    runsPerTenant: number;
    lateAfterMs?: number;
  }) {
    const current = subscribers(range.design);
    const lateAfterUs = range.lateAfterMs === undefined ? Infinity : range.lateAfterMs * 1000;
    current.ledger.begin(range.seqStart, range.seqEnd, range.tenants, range.runsPerTenant, lateAfterUs);
    current.cpuAtBegin = process.cpuUsage();
    return {};
  },
  progress: (payload: { design: Design }) => subscribers(payload.design).ledger.progress(),
  "end-at"(payload: { design: Design; seqEnd: number }) {
    subscribers(payload.design).ledger.endAt(payload.seqEnd);
    return {};
  },
  end(payload: { design: Design }) {
    const current = subscribers(payload.design);
    const cpu = process.cpuUsage(current.cpuAtBegin);
    return { ...current.ledger.end(), cpuUs: cpu.user + cpu.system };
  },
  "first-event": (wave: FirstEventWave) => measureFirstEvents(wave),
  "storm-connect"(init: StormClientsInit) {
    storms.get(init.design)?.close();
    const clients = new StormClients(init);
    storms.set(init.design, clients);
    return clients.connect();
  },
  "storm-expect-live"(payload: { design: Design; seqStart: number; tenants: number }) {
    storm(payload.design).expectLive(payload.seqStart, payload.tenants);
    return {};
  },
  "storm-live": (payload: { design: Design; timeoutMs: number }) => storm(payload.design).awaitLive(payload.timeoutMs),
  "storm-dropped": (payload: { design: Design; timeoutMs: number }) =>
    storm(payload.design).awaitDropped(payload.timeoutMs),
  "storm-reconnect": (payload: { design: Design; range: StormRange; timeoutMs: number }) =>
    storm(payload.design).reconnect(payload.range, payload.timeoutMs),
  "storm-close"(payload: { design: Design }) {
    storms.get(payload.design)?.close();
    storms.delete(payload.design);
    return {};
  },
  close(payload: { design: Design }) {
    closeAll(payload.design);
    return {};
  },
  polling: (options: { baseUrl: string; tokens: string[]; intervalMs: number; windowMs: number }) =>
    measurePollingCost(options),
  stop() {
    for (const design of [...designs.keys()]) closeAll(design);
    for (const clients of storms.values()) clients.close();
    exitSoon();
  },
});
