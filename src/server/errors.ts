/**
 * Errors a user can cause, thrown by services and turned into the tRPC error of the same
 * code at the edge, so services stay callable without tRPC.
 */
export type PulseErrorCode =
  "BAD_REQUEST" | "UNAUTHORIZED" | "FORBIDDEN" | "NOT_FOUND" | "CONFLICT" | "TOO_MANY_REQUESTS";

export class PulseError extends Error {
  constructor(
    readonly code: PulseErrorCode,
    message: string,
    /**
     * For a refusal over a rate (TOO_MANY_REQUESTS): the seconds until the same call can
     * pass. Clients read it as `error.data.retryAfterSeconds`, and over HTTP as `Retry-After`.
     */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "PulseError";
  }
}

/** A refusal over a rate that says when to come back (see `PulseError.retryAfterSeconds`). */
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new PulseError("TOO_MANY_REQUESTS", message, retryAfterSeconds);

export const notFound = (what: string) => new PulseError("NOT_FOUND", `${what} not found`);

/** Zod's issues as one line that names each field: `progress: Too big: expected number to be <=100; type: …`. */
export function describeInputIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string; code?: string; keys?: readonly string[] }[],
): string {
  return issues
    .slice(0, 10)
    .map((issue) => {
      if (issue.code === "unrecognized_keys" && issue.keys?.length) {
        const prefix = issue.path.length ? `${issue.path.map(String).join(".")}.` : "";
        return issue.keys.map((key) => `${prefix}${key}: unknown field`).join("; ");
      }
      return `${issue.path.length ? issue.path.map(String).join(".") : "input"}: ${issue.message}`;
    })
    .join("; ");
}
