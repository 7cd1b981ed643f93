import { agentRouter } from "./routers/agent";
import { authRouter } from "./routers/auth";
import { contextRouter } from "./routers/context";
import { shareRouter } from "./routers/share";
import { createCallerFactory, router } from "./trpc";

/** Pulse's API: one router per domain. Clients import `type AppRouter` only. */
export const appRouter = router({
  agent: agentRouter,
  context: contextRouter,
  auth: authRouter,
  share: shareRouter,
});

export type AppRouter = typeof appRouter;

/** Calls procedures in-process, as tests and server components do. */
export const createCaller = createCallerFactory(appRouter);
