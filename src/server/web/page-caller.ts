import type { PulseServices } from "../pulse";
import { keepNoCookie } from "../trpc/principal-context";
import { createCaller } from "../trpc/root";

/** The router's server-side caller, acting for one page's signed-in user (or for nobody). */
export type PageCaller = ReturnType<typeof createCaller>;

/** Makes a page's caller from the session token in its cookie. */
export type PageCallers = (sessionToken: string | undefined) => Promise<PageCaller>;

/**
 * Server components read through the procedures, as create-t3-app's server `api` does: the
 * same input checks, tenant scoping and authorization as a call over HTTP. The context is
 * the one an in-process caller gets: the cookie's verified session (the cookie only ever
 * holds a session), no transport, no cookies to set.
 *
 * @see https://trpc.io/docs/server/server-side-calls
 */
export function createPageCallers(services: PulseServices): PageCallers {
  return async (sessionToken) => {
    const session = await services.auth.verify(sessionToken);
    return createCaller({ services, session, setSessionCookie: keepNoCookie });
  };
}

/**
 * The pages are bundled apart from the custom server but run in its process, so the one
 * thing the server hands them is a process-wide way to make their callers: never the
 * services themselves, so a page cannot read around a procedure's checks.
 */
const KEY = Symbol.for("pulse.page-callers");

type Bridge = { [KEY]?: PageCallers };

/** Lets this process's pages call the procedures; `npm start` does it before serving them. */
export function servePagesWith(callers: PageCallers): void {
  (globalThis as Bridge)[KEY] = callers;
}

/** The caller for a page whose cookie holds `sessionToken`. */
export function pageCaller(sessionToken: string | undefined): Promise<PageCaller> {
  const callers = (globalThis as Bridge)[KEY];
  if (!callers)
    throw new Error("Pulse's procedures are not served in this process: start the dashboard with `npm start`.");
  return callers(sessionToken);
}
