import { z } from "zod";
import { storable, text } from "../../validation";
import { SETUP_CHAIN } from "../../agents/chains";
import type { Session } from "../../auth/auth-service";
import type { Context } from "../trpc";
import { authedProcedure, publicProcedure, router } from "../trpc";

const email = storable(z.email({ message: "must be an email address" }).max(254));
const password = storable(z.string().min(8, { message: "must be at least 8 characters" }).max(200));

async function startSession(ctx: Context, session: Session) {
  const { auth, sessionTtlSeconds } = ctx.services;
  const token = await auth.issueSessionToken(session);
  ctx.setSessionCookie(token, sessionTtlSeconds);
  return { token, user: { id: session.userId, email: session.email, tenantId: session.tenantId } };
}

export const authRouter = router({
  /** Creates the tenant and its first user, starts the setup chain, and signs in. */
  register: publicProcedure
    .input(z.object({ email, password, tenantName: text({ min: 1, max: 100, trim: true }) }))
    .mutation(async ({ ctx, input }) => {
      const { auth, context, runs, loginThrottle } = ctx.services;
      await loginThrottle.attemptFromIp(ctx.clientIp);
      const session = await auth.register(input);
      await context.reset(session.tenantId);
      await runs.startChain(session.tenantId, SETUP_CHAIN, { company: input.tenantName });
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
