import { initTRPC, TRPCError } from "@trpc/server";
import { z } from "zod";
import { PulseError } from "../errors";
import type { Session } from "../auth/auth-service";
import type { PulseServices } from "../pulse";

/**
 * 1. CONTEXT
 *
 * One context shape serves HTTP and WebSocket calls. The session comes only from a
 * verified token (cookie or bearer header over HTTP, `connectionParams` over WebSocket),
 * and it is the only source of the tenant id.
 */
export interface Context {
  services: PulseServices;
  session: Session | null;
  /** Sets or clears the session cookie; a no-op on WebSocket calls. */
  setSessionCookie: (token: string | null, maxAgeSeconds?: number) => void;
}

/**
 * 2. INITIALIZATION
 *
 * Input errors keep zod's issues so clients can point at the field; domain errors thrown
 * by services become the tRPC error of the same code.
 *
 * @see https://trpc.io/docs/server/error-formatting
 */
const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    return {
      ...shape,
      data: {
        ...shape.data,
        zodError: cause instanceof z.ZodError ? z.flattenError(cause) : null,
      },
    };
  },
});

export const createCallerFactory = t.createCallerFactory;
export const router = t.router;

/**
 * 3. PROCEDURES
 */
const mapDomainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof PulseError) {
    const { code, message } = result.error.cause;
    throw new TRPCError({ code, message, cause: result.error.cause });
  }
  return result;
});

export const publicProcedure = t.procedure.use(mapDomainErrors);

/** Requires a verified session; narrows `ctx.session` for the procedures below it. */
export const authedProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.session) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
  return next({ ctx: { ...ctx, session: ctx.session } });
});
