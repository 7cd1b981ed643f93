"use client";

import { createPulseClient, type PulseClient, type PulseRouter } from "@pulse/client";
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import { createTRPCReact } from "@trpc/react-query";

/**
 * The typed React Query hooks for the dashboard's own queries and mutations
 * (`trpc.auth.signIn.useMutation()`, …), on the client `@pulse/client` made; the live views
 * use the package's hooks (`usePulseRun`, `usePulseAgents`, `usePulseContext`).
 */
export const trpc = createTRPCReact<PulseRouter>();

export const TRPC_PATH = "/api/trpc";

/** Leaves for the sign-in page with a full load, dropping the socket and every subscription. */
export function signIn(): void {
  if (window.location.pathname !== "/login") window.location.assign("/login");
}

/**
 * Who the page's client speaks for: the signed-in user (the httpOnly session cookie over
 * HTTP, a short-lived socket token on the WebSocket and event streams) or the holder of a
 * share link (its token, as a bearer token everywhere).
 */
export type ClientAuth = { kind: "session" } | { kind: "share"; token: string };

export const SESSION_AUTH: ClientAuth = { kind: "session" };

/** For the socket's token: a plain HTTP client, authenticated by the httpOnly session cookie. */
const sessionClient = createTRPCClient<PulseRouter>({ links: [httpBatchLink({ url: TRPC_PATH })] });

/**
 * The dashboard's Pulse client, made by `@pulse/client` as any app's is: the signed-in user's
 * token is the short-lived socket token `auth.socketToken` hands out for the session cookie.
 * `onUnauthorized` runs when the credentials are no longer accepted (signed out, a revoked or
 * expired share link).
 */
export function createDashboardClient(auth: ClientAuth, onUnauthorized: () => void): PulseClient {
  // Server rendering never subscribes or fetches through this client (hooks run in effects).
  const url = typeof window === "undefined" ? "http://localhost" : window.location.origin;
  if (auth.kind === "share") return createPulseClient({ url, getToken: () => auth.token, onUnauthorized });
  return createPulseClient({
    url,
    getToken: async ({ signal }) => (await sessionClient.auth.socketToken.query(undefined, { signal })).token,
    bearerOverHttp: false,
    onUnauthorized,
  });
}
