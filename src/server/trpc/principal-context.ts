import { TRPCError } from "@trpc/server";
import type { Principal } from "../auth/auth-service";
import { isDatabaseUnavailable } from "../database-unavailable";
import type { PulseServices } from "../pulse";
import type { Context } from "./trpc";

/** What a transport adds to a call's context beyond the services and who is calling. */
export type TransportContext = Omit<Context, "services" | "session" | "share">;

/**
 * The one way every transport (HTTP, WebSocket, server-sent events) turns a verified
 * principal into a procedure's context: a user's session or a share link's grant, never both,
 * and nothing for a principal that was refused.
 */
export function principalContext(
  services: PulseServices,
  principal: Principal | null,
  transport: TransportContext,
): Context {
  return {
    services,
    session: principal?.kind === "user" ? principal.session : null,
    share: principal?.kind === "share" ? principal.share : null,
    ...transport,
  };
}

/** WebSocket and event-stream calls cannot set cookies: one function for all of their contexts. */
export function keepNoCookie(): void {}

/** A session check that could not reach the database is a 503 the client retries, not a 500. */
export function asRetryable(error: unknown): never {
  if (isDatabaseUnavailable(error)) {
    throw new TRPCError({
      code: "SERVICE_UNAVAILABLE",
      message: "the database is unavailable right now; try again shortly",
      cause: error,
    });
  }
  throw error;
}
