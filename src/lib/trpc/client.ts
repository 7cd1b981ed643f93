"use client";

import { createTRPCClient, createWSClient, httpBatchLink, splitLink, TRPCClientError, wsLink, type TRPCLink } from "@trpc/client";
import { createTRPCReact } from "@trpc/react-query";
import type { AppRouter } from "@/server/trpc/root";
import type { ConnectionMonitor } from "./connection";

/** The typed React hooks: `trpc.agent.onStatus.useSubscription(...)` and friends. */
export const trpc = createTRPCReact<AppRouter>();

export const TRPC_PATH = "/api/trpc";

/** The server closes a socket with this code shortly before its token expires. */
const TOKEN_REFRESH_CLOSE_CODE = 4000;

/** Leaves for the sign-in page with a full load, dropping the socket and every subscription. */
export function signIn(): void {
  if (window.location.pathname !== "/login") window.location.assign("/login");
}

/** For the socket's token: a plain HTTP client, authenticated by the httpOnly session cookie. */
const httpClient = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: TRPC_PATH })] });

/** Exponential backoff with jitter, so a fleet of tabs does not reconnect in lockstep. */
export function reconnectDelayMs(attempt: number): number {
  const ceiling = Math.min(10_000, 500 * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * Who the page's client speaks for: the signed-in user (the httpOnly session cookie over
 * HTTP, a short-lived socket token on the WebSocket) or the holder of a share link (its
 * token, as a bearer token over HTTP and in `connectionParams` on the WebSocket).
 */
export type ClientAuth = { kind: "session" } | { kind: "share"; token: string };

export const SESSION_AUTH: ClientAuth = { kind: "session" };

/**
 * Subscriptions go over one WebSocket on the page's own origin; queries and mutations over
 * HTTP. The socket authenticates with `connectionParams`, evaluated again on every
 * reconnect, so a reconnect always carries a fresh short-lived token and never puts one in
 * the URL. Its opens and closes feed the connection monitor. `onUnauthorized` is called when
 * the credentials are no longer accepted (signed out, a revoked or expired share link).
 *
 * @see https://trpc.io/docs/client/links/wsLink#connection-params
 */
export function createLinks(monitor: ConnectionMonitor, auth: ClientAuth = SESSION_AUTH, onUnauthorized: () => void = signIn): TRPCLink<AppRouter>[] {
  // Server rendering never subscribes or fetches through this client (hooks run in effects).
  if (typeof window === "undefined") return [httpBatchLink({ url: `http://localhost${TRPC_PATH}` })];
  const { protocol, host } = window.location;
  const ws = createWSClient({
    url: `${protocol === "https:" ? "wss" : "ws"}://${host}${TRPC_PATH}`,
    connectionParams: async () => {
      if (auth.kind === "share") return { token: auth.token };
      try {
        const { token } = await httpClient.auth.socketToken.query();
        return { token };
      } catch (error) {
        // Signed out (or the session was revoked): no reconnect can succeed.
        if (error instanceof TRPCClientError && error.data?.code === "UNAUTHORIZED") onUnauthorized();
        throw error;
      }
    },
    retryDelayMs: reconnectDelayMs,
    // Opens only while a subscription needs it, so public pages never ask for a token.
    lazy: { enabled: true, closeMs: 10_000 },
    keepAlive: { enabled: true, intervalMs: 10_000, pongTimeoutMs: 4_000 },
    onOpen: () => monitor.socketOpened(),
    onClose: (cause) => monitor.socketClosed(cause?.code === TOKEN_REFRESH_CLOSE_CODE),
  });
  return [
    splitLink({
      condition: (op) => op.type === "subscription",
      true: wsLink({ client: ws }),
      false: httpBatchLink({ url: TRPC_PATH, ...(auth.kind === "share" ? { headers: { authorization: `Bearer ${auth.token}` } } : {}) }),
    }),
  ];
}
