import { z } from "zod";
import { repairText, storable, text } from "../validation";

/**
 * The event contract: every lifecycle step of an agent run, and the tenant's context file
 * status, as one zod discriminated union on `type`. Field names follow the source designs
 * (tenantId, jobId, runId, queue, agentRole, progress 0–100, phase, ISO timestamps). Every
 * TypeScript type for events, on the server and in the browser, is inferred from here.
 */

export const AGENT_ROLE_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
export const agentRoleSchema = storable(
  z.string().regex(AGENT_ROLE_PATTERN, { message: "must be lowercase letters, digits and dashes" }),
);

/** A Redis stream entry id (`<ms>-<seq>`): the id of every delivered event. */
export const streamIdSchema = storable(
  z
    .string()
    .max(41)
    .regex(/^\d{1,20}-\d{1,20}$/, { message: "must be an event id like 1700000000000-0" }),
);

/**
 * An id of a tenant, run, job, log line or share link: what every input naming one accepts.
 * No control characters: an id is printable, and PostgreSQL cannot even compare one holding
 * U+0000.
 */
// eslint-disable-next-line no-control-regex -- the control characters are what it refuses
export const idSchema = text({ min: 1, max: 128 }).regex(/^[^\u0000-\u001f\u007f]*$/, {
  message: "must not contain control characters",
});
const id = idSchema;

/** The longest text each event field holds, in UTF-16 code units (JavaScript's `length`). */
export const TEXT_LIMITS = {
  progressMessage: 500,
  stepName: 200,
  error: 2000,
  outputChunk: 16_384,
  logMessage: 4000,
  cancelReason: 500,
} as const;

/**
 * Free text an agent writes (messages, step names, errors, output). Model output now and
 * then carries a U+0000 or a lone surrogate, which PostgreSQL cannot store: it is kept and
 * delivered as U+FFFD (see `repairText`), so a stray character never fails the run that
 * printed it. Client input refuses them instead (`text()`).
 */
function agentText(min: number, max: number) {
  return z.string().min(min).max(max).transform(repairText);
}

const isoDate = z.iso.datetime({ offset: true });

export const runStatusSchema = z.enum(["queued", "active", "completed", "failed", "cancelled"]);
export const runPhaseSchema = z.enum(["starting", "running", "completing"]);
export const stepStatusSchema = z.enum(["started", "completed", "failed"]);
export const logLevelSchema = z.enum(["debug", "info", "warn", "error"]);
export const contextStatusSchema = z.enum(["pending", "generating", "completed", "approved"]);

/** Fields every agent event carries: whose run, which job, and which attempt it belongs to. */
const agentEventBase = {
  tenantId: id,
  runId: id,
  jobId: id,
  queue: id,
  agentRole: agentRoleSchema,
  /** 1-based; progress of one attempt never mixes with the next. */
  attempt: z.number().int().min(1).max(1000),
};

export const agentQueuedSchema = z.object({
  type: z.literal("agent:queued"),
  ...agentEventBase,
  queuedAt: isoDate,
  chainId: id.optional(),
  /** The named chain of `chainId` (pulse.config's chains). */
  chainName: agentRoleSchema.optional(),
});

export const agentActiveSchema = z.object({
  type: z.literal("agent:active"),
  ...agentEventBase,
  startedAt: isoDate,
});

export const agentProgressSchema = z.object({
  type: z.literal("agent:progress"),
  ...agentEventBase,
  progress: z.number().min(0).max(100),
  phase: runPhaseSchema,
  message: agentText(0, TEXT_LIMITS.progressMessage),
});

export const agentStepSchema = z.object({
  type: z.literal("agent:step"),
  ...agentEventBase,
  stepId: id,
  name: agentText(1, TEXT_LIMITS.stepName),
  status: stepStatusSchema,
  error: agentText(0, TEXT_LIMITS.error).optional(),
});

export const agentOutputSchema = z.object({
  type: z.literal("agent:output"),
  ...agentEventBase,
  chunk: agentText(1, TEXT_LIMITS.outputChunk),
});

export const agentLogSchema = z.object({
  type: z.literal("agent:log"),
  ...agentEventBase,
  level: logLevelSchema,
  message: agentText(1, TEXT_LIMITS.logMessage),
});

export const agentCompletedSchema = z.object({
  type: z.literal("agent:completed"),
  ...agentEventBase,
  completedAt: isoDate,
  nextAgent: agentRoleSchema.optional(),
});

export const agentFailedSchema = z.object({
  type: z.literal("agent:failed"),
  ...agentEventBase,
  error: agentText(1, TEXT_LIMITS.error),
  failedAt: isoDate,
  /** True when BullMQ will run another attempt; the run shows as retrying, not failed. */
  willRetry: z.boolean(),
});

export const agentCancelledSchema = z.object({
  type: z.literal("agent:cancelled"),
  ...agentEventBase,
  cancelledAt: isoDate,
  reason: agentText(0, TEXT_LIMITS.cancelReason).optional(),
});

export const contextStatusChangedSchema = z.object({
  type: z.literal("context:status_changed"),
  tenantId: id,
  status: contextStatusSchema,
  version: z.number().int().min(0).optional(),
});

/** What a publisher hands to the bus. */
export const eventInputSchema = z.discriminatedUnion("type", [
  agentQueuedSchema,
  agentActiveSchema,
  agentProgressSchema,
  agentStepSchema,
  agentOutputSchema,
  agentLogSchema,
  agentCompletedSchema,
  agentFailedSchema,
  agentCancelledSchema,
  contextStatusChangedSchema,
]);

/** Stamped by the bus when the event is applied to the database. */
export const eventStampSchema = z.object({
  /**
   * The run's (or context file's) change counter after this event. A snapshot carries the
   * same counter, so a client drops live events its snapshot already contains. Progress is
   * latest-wins and not counted (`seq` 0): it applies to the run's current attempt while
   * that attempt is active.
   */
  seq: z.number().int().min(0),
  at: isoDate,
});

/** What subscribers receive: the input plus its stamp. */
export const pulseEventSchema = z.intersection(eventInputSchema, eventStampSchema);

export type EventInput = z.infer<typeof eventInputSchema>;
export type ProgressInput = Extract<EventInput, { type: "agent:progress" }>;
/** Events applied to the database before they are delivered (all but progress). */
export type CountedEventInput = Exclude<EventInput, ProgressInput>;
export type PulseEvent = z.infer<typeof pulseEventSchema>;
export type EventType = EventInput["type"];
export type AgentEvent = Extract<PulseEvent, { type: `agent:${string}` }>;
export type AgentEventInput = Extract<EventInput, { type: `agent:${string}` }>;
export type ContextEvent = Extract<PulseEvent, { type: "context:status_changed" }>;
export type RunStatus = z.infer<typeof runStatusSchema>;
export type RunPhase = z.infer<typeof runPhaseSchema>;
export type ContextStatus = z.infer<typeof contextStatusSchema>;
export type LogLevel = z.infer<typeof logLevelSchema>;

export function isAgentEvent(event: PulseEvent): event is AgentEvent {
  return event.type.startsWith("agent:");
}

export { compareStreamIds, STREAM_ORIGIN } from "../../shared/stream-id";
