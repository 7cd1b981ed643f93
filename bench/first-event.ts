import { latencyHistogram, summarise, type LatencySummary } from "./delivery-ledger";
import { connectLean, loopbackSource, type BenchConnection } from "./lean-clients";
import { nowUs, type Design } from "./workload";

/**
 * Time to first event on subscribe, the clients' side: every connection of the wave opened
 * at once to tenants that are publishing, each timed from the moment it was opened to its
 * socket being open (`connect`), to its subscription being in place (`subscribed`: Pulse's
 * snapshot, Socket.IO's CONNECT ack after the room join, the floor's "ready"), and to the
 * first live event it received (`firstEvent`, Pulse's snapshot read included).
 */
export interface FirstEventWave {
  design: Design;
  baseUrl: string;
  /** One entry per connection: its tenant (index) and token. */
  connections: { tenant: number; token: string }[];
  /** A connection with no event by then counts as failed. */
  timeoutMs: number;
}

export interface FirstEventOutcome {
  connections: number;
  /** Connections that received a live event within the timeout. */
  live: number;
  failed: number;
  errors: string[];
  connectMs: LatencySummary;
  subscribedMs: LatencySummary;
  firstEventMs: LatencySummary;
  /**
   * How long the client took to start every connection of the wave, in one turn of its event
   * loop: no request leaves it before that turn ends, so up to this much of each figure above
   * is the client's own work, for every design alike (absent from runs before it was kept).
   */
  openingMs?: number;
}

/** When one connection reached each point, from its own start (µs). */
interface ConnectionTimes {
  startedUs: number;
  openedUs?: number;
  subscribedUs?: number;
  firstEventUs?: number;
}

/** Opens one connection and resolves once it has had a live event (or failed, or timed out). */
function timedConnection(
  wave: FirstEventWave,
  token: string,
  from: string,
  deadline: Promise<never>,
): { times: ConnectionTimes; connection: BenchConnection; live: Promise<void> } {
  const times: ConnectionTimes = { startedUs: nowUs() };
  let firstEvent!: () => void;
  const evented = new Promise<void>((resolve) => (firstEvent = resolve));
  const connection = connectLean(
    wave.design,
    wave.baseUrl,
    token,
    {
      opened: () => (times.openedUs ??= nowUs()),
      event: () => {
        times.firstEventUs ??= nowUs();
        firstEvent();
      },
      resync: () => {},
      closed: () => {},
      misordered: () => {},
    },
    from,
  );
  const live = (async () => {
    await Promise.race([connection.ready, deadline]);
    times.subscribedUs = nowUs();
    await Promise.race([evented, deadline]);
  })();
  return { times, connection, live };
}

/** Durations (ms) from each connection's start to the point `at` picks, for the connections that reached it. */
function durations(times: ConnectionTimes[], at: (t: ConnectionTimes) => number | undefined): LatencySummary {
  const histogram = latencyHistogram();
  for (const t of times) {
    const reached = at(t);
    if (reached !== undefined) histogram.recordValue(Math.max(1, reached - t.startedUs));
  }
  return summarise(histogram);
}

/** Opens the wave's connections all at once, waits for each one's first live event, then closes them all. */
export async function measureFirstEvents(wave: FirstEventWave): Promise<FirstEventOutcome> {
  const deadline = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`no live event within ${wave.timeoutMs} ms`)), wave.timeoutMs).unref(),
  );
  deadline.catch(() => {});
  const openingUs = nowUs();
  const opened = wave.connections.map((c, i) => timedConnection(wave, c.token, loopbackSource(i), deadline));
  const openingMs = Math.round((nowUs() - openingUs) / 100) / 10;
  const settled = await Promise.allSettled(opened.map((o) => o.live));
  for (const { connection } of opened) connection.close();
  const errors = settled.flatMap((s) => (s.status === "rejected" ? [String((s.reason as Error).message)] : []));
  const times = opened.map((o) => o.times);
  return {
    connections: opened.length,
    live: opened.length - errors.length,
    failed: errors.length,
    errors: [...new Set(errors)].slice(0, 5),
    connectMs: durations(times, (t) => t.openedUs),
    subscribedMs: durations(times, (t) => t.subscribedUs),
    firstEventMs: durations(times, (t) => t.firstEventUs),
    openingMs,
  };
}
