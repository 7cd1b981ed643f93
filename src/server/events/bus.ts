import type { PrismaClient } from "../../generated/prisma/client";
import type { TenantEventStream } from "./event-stream";
import { projectEvent } from "./projection";
import { eventInputSchema, type EventInput, type PulseEvent } from "./schema";

export interface PublishedEvent {
  /** The Redis stream entry id: the id every subscriber sees for this event. */
  id: string;
  event: PulseEvent;
}

/**
 * The one way an event enters Pulse, from an in-process agent, an external agent's HTTP
 * report, or BullMQ's stalled-job handling: validate it, apply it to the database (the
 * ground truth), then append it to the tenant's stream (the ordered, replayable log).
 */
export class EventBus {
  constructor(
    private readonly db: PrismaClient,
    readonly stream: TenantEventStream,
  ) {}

  /**
   * Publishes an event. Resolves to null when the event no longer applies to the run's
   * state (see `projectEvent`); such an event is neither stored nor delivered.
   */
  async publish(input: EventInput): Promise<PublishedEvent | null> {
    const parsed = eventInputSchema.parse(input);
    const seq = await projectEvent(this.db, parsed);
    if (seq === null) return null;
    const event = { ...parsed, seq, at: new Date().toISOString() } as PulseEvent;
    const { id, genesis } = await this.stream.append(parsed.tenantId, JSON.stringify(event));
    // The first id a tenant's stream ever had outlives the stream (a Redis restart without
    // persistence), so a resuming client can be told "resync" rather than "not found".
    if (genesis) {
      await this.db.tenant.updateMany({ where: { id: parsed.tenantId, firstEventId: null }, data: { firstEventId: genesis } });
    }
    return { id, event };
  }
}
