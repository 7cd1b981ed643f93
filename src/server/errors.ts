/**
 * Errors a user can cause, thrown by services and turned into the tRPC error of the same
 * code at the edge, so services stay callable without tRPC.
 */
export type PulseErrorCode = "BAD_REQUEST" | "UNAUTHORIZED" | "NOT_FOUND" | "CONFLICT" | "TOO_MANY_REQUESTS";

export class PulseError extends Error {
  constructor(
    readonly code: PulseErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "PulseError";
  }
}

export const notFound = (what: string) => new PulseError("NOT_FOUND", `${what} not found`);
