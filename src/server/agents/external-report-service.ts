import { z } from "zod";
import type { PrismaClient } from "../../generated/prisma/client";
import type { ReportGrant } from "../auth/auth-service";
import { describeInputIssues, notFound, PulseError } from "../errors";
import type { EventBus, PublishedEvent } from "../events/bus";
import { reportBodySchema, SERVER_SET_FIELDS } from "../events/report-schema";
import type { AgentEventInput } from "../events/schema";
import { WITHOUT_OUTPUT } from "../events/snapshot";

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
    const run = await this.deps.db.agentRun.findFirst({
      where: { id: grant.runId, tenantId: grant.tenantId },
      omit: WITHOUT_OUTPUT,
    });
    if (!run) throw notFound("run");
    if (!this.deps.externalRoles.includes(run.agentRole)) {
      throw new PulseError(
        "FORBIDDEN",
        `${run.agentRole} runs inside Pulse; only agents of EXTERNAL_AGENT_ROLES report over HTTP`,
      );
    }
    if (body !== null && typeof body === "object" && !Array.isArray(body)) {
      const smuggled = SERVER_SET_FIELDS.find((field) => field in body);
      if (smuggled)
        throw new PulseError("BAD_REQUEST", `${smuggled}: set by the server from the run token; leave it out`);
    }
    const parsed = reportBodySchema.safeParse(body);
    if (!parsed.success) throw new PulseError("BAD_REQUEST", describeInputIssues(parsed.error.issues));
    const report = parsed.data;

    const now = new Date().toISOString();
    const attempt = report.attempt ?? run.attempt;
    const base = {
      tenantId: run.tenantId,
      runId: run.id,
      jobId: run.jobId,
      queue: run.queue,
      agentRole: run.agentRole,
      attempt,
    };
    if (report.type === "agent:active" && run.status !== "queued") {
      throw new PulseError("CONFLICT", `run is ${run.status}; only a queued run can become active`);
    }
    let event: AgentEventInput;
    switch (report.type) {
      case "agent:active":
        event = { ...base, type: report.type, startedAt: report.startedAt ?? now };
        break;
      case "agent:step":
        // Prefixed with the run, so one run's step ids can never name another run's steps.
        event = { ...base, ...report, attempt, stepId: `${run.id}:${attempt}:${report.stepId}` };
        break;
      case "agent:completed":
        event = { ...base, type: report.type, completedAt: report.completedAt ?? now };
        break;
      case "agent:failed":
        event = { ...base, ...report, attempt, failedAt: report.failedAt ?? now };
        break;
      default:
        event = { ...base, ...report, attempt };
    }

    let published: PublishedEvent | null;
    try {
      published = await this.deps.bus.publish(event);
    } catch (error) {
      if (error instanceof z.ZodError) throw new PulseError("BAD_REQUEST", describeInputIssues(error.issues));
      throw error;
    }
    if (published) return published;
    const current = await this.deps.db.agentRun.findFirst({
      where: { id: run.id, tenantId: run.tenantId },
      select: { status: true, attempt: true },
    });
    if (!current) throw notFound("run");
    if (current.status === "queued")
      throw new PulseError("CONFLICT", 'run is queued: report {"type":"agent:active"} first');
    if (current.status !== "active")
      throw new PulseError("CONFLICT", `run is ${current.status}; it takes no more reports`);
    throw new PulseError("CONFLICT", `attempt: ${attempt} is not the run's current attempt (${current.attempt})`);
  }
}
