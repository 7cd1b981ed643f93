import { z } from "zod";
import {
  agentActiveSchema,
  agentCompletedSchema,
  agentFailedSchema,
  agentLogSchema,
  agentOutputSchema,
  agentProgressSchema,
  agentStepSchema,
} from "./schema";
import { isoDateInput, storable } from "../validation";

/**
 * The body of an external agent's HTTP report: one event of the same zod schemas, minus the
 * fields the server takes from the run token and the run itself (tenant, run, job, queue,
 * role). Objects are strict, so a misspelt or smuggled field is a BAD_REQUEST naming it.
 * After the server fills those fields in, `EventBus.publish` validates the whole event with
 * `eventInputSchema` again.
 */

/** Set by the server; a report that carries one of them is refused with a message saying so. */
export const SERVER_SET_FIELDS = ["tenantId", "runId", "jobId", "queue", "agentRole"] as const;

const identity = { tenantId: true, runId: true, jobId: true, queue: true, agentRole: true, attempt: true } as const;
const attempt = z.number().int().min(1).max(1000).optional();
/** When the agent says something happened; the server's clock when it does not say. */
const isoDate = isoDateInput({ offset: true }).optional();

/** The agent's own name for a step; the server prefixes it with the run and attempt to make the stored id. */
export const reportStepIdSchema = storable(
  z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, { message: "must be 1-64 letters, digits, '.', '_', ':' or '-'" }),
);

export const reportBodySchema = z.discriminatedUnion("type", [
  agentActiveSchema.omit(identity).extend({ attempt, startedAt: isoDate }).strict(),
  agentProgressSchema
    .omit(identity)
    .extend({ attempt, phase: agentProgressSchema.shape.phase.default("running") })
    .strict(),
  agentStepSchema.omit(identity).extend({ attempt, stepId: reportStepIdSchema }).strict(),
  agentOutputSchema.omit(identity).extend({ attempt }).strict(),
  agentLogSchema.omit(identity).extend({ attempt }).strict(),
  // Chains are Pulse's to start: an external agent cannot name the next agent.
  agentCompletedSchema
    .omit({ ...identity, nextAgent: true })
    .extend({ attempt, completedAt: isoDate })
    .strict(),
  agentFailedSchema
    .omit(identity)
    .extend({ attempt, failedAt: isoDate, willRetry: z.boolean().default(false) })
    .strict(),
]);

export type ReportBody = z.infer<typeof reportBodySchema>;
export type ReportType = ReportBody["type"];
