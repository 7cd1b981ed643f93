import type { AgentEventInput } from "../events/schema";
import type { EventBus } from "../events/bus";

/**
 * What an attempt reports goes out one report after another, in the order its agent made
 * them, whether it awaited them or not: a log line (written to the database before it is
 * streamed) never lands after a progress report made later (which is streamed at once).
 * `settled` waits for every report and step the agent started, so the attempt's end comes
 * after all of them instead of refusing the ones still on their way.
 */
export class AttemptReports {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly outstanding = new Set<Promise<unknown>>();

  constructor(private readonly bus: Pick<EventBus, "publish">) {}

  publish(event: AgentEventInput): ReturnType<EventBus["publish"]> {
    const published = this.tail.then(() => this.bus.publish(event));
    // One report's failure is its caller's; the next still goes.
    this.tail = published.catch(() => {});
    return published;
  }

  /**
   * Runs one of the agent's calls and counts it until it ends. Its outcome is the caller's
   * to await; one the agent left unawaited cannot fail the process as an unhandled rejection.
   */
  track<T>(call: () => Promise<T>): Promise<T> {
    const work = call();
    this.outstanding.add(work);
    const done = () => void this.outstanding.delete(work);
    work.then(done, done);
    return work;
  }

  /** Resolves once every call started so far, and any they started, has ended. */
  async settled(): Promise<void> {
    while (this.outstanding.size > 0) await Promise.allSettled([...this.outstanding]);
  }
}
