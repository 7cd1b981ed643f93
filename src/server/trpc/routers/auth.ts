import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { storable, text } from "../../validation";
import type { Session } from "../../auth/auth-service";
import { passwordProblem } from "../../auth/password-policy";
import { startTenantSetup } from "../../agents/tenant-setup";
import { DEMO_USER } from "../../auth/demo-account";
import type { Context } from "../trpc";
import { authedProcedure, publicProcedure, router } from "../trpc";

const email = storable(z.email({ message: "must be an email address" }).max(254));
/** A new account's password: the policy's reason for refusing it names the field like any input error. */
const newPassword = storable(
  z
    .string()
    .max(200)
    .superRefine((value, ctx) => {
      const problem = passwordProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
);

async function startSession(ctx: Context, session: Session) {
  const { auth, sessionTtlSeconds } = ctx.services;
  const token = await auth.issueSessionToken(session);
  ctx.setSessionCookie(token, sessionTtlSeconds);
  return { token, user: { id: session.userId, email: session.email, tenantId: session.tenantId } };
}

export const authRouter = router({
  /**
   * Creates the tenant and its first user, starts the setup chain (when this deployment has
   * its agents), and signs in. CONFLICT when the email has an account; FORBIDDEN with
   * PULSE_REGISTRATION=false. A setup chain that fails to start is started by the next
   * start of Pulse (see `startPendingSetups`): the account exists, so the answer is still a
   * session.
   */
  register: publicProcedure
    .input(z.object({ email, password: newPassword, tenantName: text({ min: 1, max: 100, trim: true }) }))
    .mutation(async ({ ctx, input }) => {
      const { auth, loginThrottle, logger, registrationOpen } = ctx.services;
      if (!registrationOpen)
        throw new TRPCError({
          code: "FORBIDDEN",
          message: "registration is closed on this Pulse (PULSE_REGISTRATION=false)",
        });
      await loginThrottle.attemptFromIp(ctx.clientIp);
      const session = await auth.register(input);
      await startTenantSetup(ctx.services, session.tenantId).catch((err: unknown) => {
        logger.error(
          { err, tenantId: session.tenantId },
          "could not start a new tenant's setup chain; the next start of Pulse starts it",
        );
      });
      return startSession(ctx, session);
    }),

  /**
   * Signs in: an httpOnly cookie for the web app, and the same token as a bearer for API
   * clients. TOO_MANY_REQUESTS after too many attempts for the account or from the address.
   */
  login: publicProcedure
    .input(z.object({ email, password: text({ min: 1, max: 200 }) }))
    .mutation(async ({ ctx, input }) => {
      const { auth, loginThrottle } = ctx.services;
      await loginThrottle.attempt(input.email, ctx.clientIp);
      const session = await auth.login(input);
      await loginThrottle.succeeded(input.email);
      return startSession(ctx, session);
    }),

  /** Ends the session everywhere: its tokens stop working at once, open WebSockets within seconds. */
  logout: publicProcedure.mutation(async ({ ctx }) => {
    if (ctx.session) await ctx.services.auth.revokeSession(ctx.session.sessionId);
    ctx.setSessionCookie(null);
    return { ok: true };
  }),

  /**
   * What the sign-in and registration pages may offer: registration only where it is open,
   * the demo account's sign-in only where the demo account exists.
   */
  signInOptions: publicProcedure.query(({ ctx }) => {
    const { registrationOpen, demoAccount } = ctx.services;
    return {
      registrationOpen,
      demoAccount: demoAccount ? { email: DEMO_USER.email, password: DEMO_USER.password } : null,
    };
  }),

  me: publicProcedure.query(({ ctx }) =>
    ctx.session ? { id: ctx.session.userId, email: ctx.session.email, tenantId: ctx.session.tenantId } : null,
  ),

  /**
   * A short-lived token for the WebSocket's connectionParams; fetched again on every
   * reconnect. Before it expires the server asks the socket to reconnect, which fetches a
   * fresh one and resumes every subscription by its last event id.
   */
  socketToken: authedProcedure.query(async ({ ctx }) => {
    const { token, expiresAt } = await ctx.services.auth.issueSocketToken(ctx.session);
    return { token, expiresAt: expiresAt.toISOString() };
  }),
});
