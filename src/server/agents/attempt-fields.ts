import { TEXT_LIMITS } from "../events/schema";
import { fitText } from "./report-text";

/** The columns of a run an attempt's events are made from. */
export type RunRow = {
  id: string;
  tenantId: string;
  jobId: string;
  queue: string;
  agentRole: string;
  attempt: number;
  status: string;
};

/** The fields every event of one attempt of a run carries. */
export function attemptFields(run: RunRow, attempt: number) {
  return {
    tenantId: run.tenantId,
    runId: run.id,
    jobId: run.jobId,
    queue: run.queue,
    agentRole: run.agentRole,
    attempt,
  };
}

/** An error as a dashboard shows it: its message, cut to the schema's limit, never empty. */
export function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return fitText(message, TEXT_LIMITS.error) || "unknown error";
}

/** The abort reason that tells a running attempt its process is stopping and the job goes back to the queue. */
export const HANDED_BACK = "handed back";
