import { z } from "zod";
import type { PrismaClient } from "../../generated/prisma/client";
import type { ReportGrant } from "../auth/auth-service";
import { describeInputIssues, notFound, PulseError } from "../errors";
import type { EventBus, PublishedEvent } from "../events/bus";
import { reportBodySchema, SERVER_SET_FIELDS, type ReportBody } from "../events/report-schema";
import { attemptFields, type RunRow } from "./attempt-fields";
import type { AgentEventInput } from "../events/schema";

/**
 * Turns an external agent's report (one HTTP call per event) into an event on the bus. The
 * run and tenant come from the verified report token only; the body supplies what happened.
 * It goes through the same `EventBus.publish` as in-process agents, so the same schema, the
 * same database projection and the same stream carry it to every dashboard.
 */
export class ExternalReportService {
  constructor(
    private readonly deps: {
      db: PrismaClient;
      bus: EventBus;
      /** Roles whose agents run outside Pulse; no other role's run takes reports. */
      externalRoles: readonly string[];
    },
  ) {}

  /**
   * Publishes one report for the run in the URL. A run other than the token's is NOT_FOUND,
   * exactly like a run that does not exist; a report that no longer applies to the run (it
   * ended, or is still queued) is CONFLICT saying why. A run of a role Pulse runs itself is
   * FORBIDDEN, even with a valid token: only its worker reports it.
   */
  async report(grant: ReportGrant, runId: string, body: unknown): Promise<PublishedEvent> {
    if (runId !== grant.runId) throw notFound("run");
    const run = await this.reportedRun(grant);
    const report = parseReport(body);
    if (report.type === "agent:active" && run.status !== "queued") {
      throw new PulseError("CONFLICT", `run is ${run.status}; only a queued run can become active`);
    }
    const event = eventOf(run, report);
    let published: PublishedEvent | null;
    try {
      published = await this.deps.bus.publish(event);
    } catch (error) {
      if (error instanceof z.ZodError) throw new PulseError("BAD_REQUEST", describeInputIssues(error.issues));
      throw error;
    }
    if (published) return published;
    throw await this.whyNotPublished(run, event.attempt);
  }

  /** The token's run, of a role run outside Pulse. */
  private async reportedRun(grant: ReportGrant) {
    const run = await this.deps.db.agentRun.findFirst({
      where: { id: grant.runId, tenantId: grant.tenantId },
    });
    if (!run) throw notFound("run");
    if (!this.deps.externalRoles.includes(run.agentRole)) {
      throw new PulseError(
        "FORBIDDEN",
        `${run.agentRole} runs inside Pulse; only agents of EXTERNAL_AGENT_ROLES report over HTTP`,
      );
    }
    return run;
  }

  /** Why the bus did not apply a report, read after the fact: the run is still queued, has ended, or runs another attempt. */
  private async whyNotPublished(run: RunRow, attempt: number): Promise<PulseError> {
    const current = await this.deps.db.agentRun.findFirst({
      where: { id: run.id, tenantId: run.tenantId },
      select: { status: true, attempt: true },
    });
    if (!current) return notFound("run");
    if (current.status === "queued") {
      return new PulseError("CONFLICT", 'run is queued: report {"type":"agent:active"} first');
    }
    if (current.status !== "active") {
      return new PulseError("CONFLICT", `run is ${current.status}; it takes no more reports`);
    }
    return new PulseError("CONFLICT", `attempt: ${attempt} is not the run's current attempt (${current.attempt})`);
  }
}

/** A report's body, refused with BAD_REQUEST naming the field when it is not one, or carries a field the server sets. */
function parseReport(body: unknown): ReportBody {
  if (body !== null && typeof body === "object" && !Array.isArray(body)) {
    const smuggled = SERVER_SET_FIELDS.find((field) => field in body);
    if (smuggled) {
      throw new PulseError("BAD_REQUEST", `${smuggled}: set by the server from the run token; leave it out`);
    }
  }
  const parsed = reportBodySchema.safeParse(body);
  if (!parsed.success) throw new PulseError("BAD_REQUEST", describeInputIssues(parsed.error.issues));
  return parsed.data;
}

/** The event a report stands for, on the run's current attempt unless it names one; times default to now. */
function eventOf(run: RunRow, report: ReportBody): AgentEventInput & { attempt: number } {
  const now = new Date().toISOString();
  const attempt = report.attempt ?? run.attempt;
  const base = attemptFields(run, attempt);
  switch (report.type) {
    case "agent:active":
      return { ...base, type: report.type, startedAt: report.startedAt ?? now };
    case "agent:step":
      // Prefixed with the run, so one run's step ids can never name another run's steps.
      return { ...base, ...report, attempt, stepId: `${run.id}:${attempt}:${report.stepId}` };
    case "agent:completed":
      return { ...base, type: report.type, completedAt: report.completedAt ?? now };
    case "agent:failed":
      return { ...base, ...report, attempt, failedAt: report.failedAt ?? now };
    default:
      return { ...base, ...report, attempt };
  }
}
