"use client";

import { createTRPCClient, createWSClient, httpBatchLink, httpSubscriptionLink, splitLink, TRPCClientError, wsLink, type TRPCLink } from "@trpc/client";
import { createTRPCReact } from "@trpc/react-query";
import type { AppRouter } from "@/server/trpc/root";
import type { ConnectionMonitor } from "./connection";
import { preferredTransportLink } from "./preferred-transport-link";

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

/** How often, while subscriptions are on server-sent events, a probe WebSocket checks whether the socket gets through again. */
const SOCKET_PROBE_MS = 10_000;

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
 * Subscriptions go over one WebSocket on the page's own origin, or, while it cannot connect,
 * as server-sent events (`httpSubscriptionLink`) from the same port; when those fail too,
 * the hooks poll (see `ConnectionMonitor`). Queries and mutations go over HTTP. Both push
 * transports authenticate with `connectionParams`, evaluated again on every (re)connect, so
 * each carries a fresh short-lived token. `onUnauthorized` is called when the credentials
 * are no longer accepted (signed out, a revoked or expired share link).
 *
 * @see https://trpc.io/docs/client/links/wsLink#connection-params
 * @see https://trpc.io/docs/client/links/httpSubscriptionLink
 */
export function createLinks(monitor: ConnectionMonitor, auth: ClientAuth = SESSION_AUTH, onUnauthorized: () => void = signIn): TRPCLink<AppRouter>[] {
  // Server rendering never subscribes or fetches through this client (hooks run in effects).
  if (typeof window === "undefined") return [httpBatchLink({ url: `http://localhost${TRPC_PATH}` })];
  const { protocol, host } = window.location;
  const socketUrl = `${protocol === "https:" ? "wss" : "ws"}://${host}${TRPC_PATH}`;
  const connectionParams = async () => {
    if (auth.kind === "share") return { token: auth.token };
    try {
      const { token } = await httpClient.auth.socketToken.query();
      return { token };
    } catch (error) {
      // Signed out (or the session was revoked): no reconnect can succeed.
      if (error instanceof TRPCClientError && error.data?.code === "UNAUTHORIZED") onUnauthorized();
      throw error;
    }
  };
  const ws = createWSClient({
    url: socketUrl,
    connectionParams,
    retryDelayMs: reconnectDelayMs,
    // Opens only while a subscription needs it, so public pages never ask for a token.
    lazy: { enabled: true, closeMs: 10_000 },
    keepAlive: { enabled: true, intervalMs: 10_000, pongTimeoutMs: 4_000 },
    onOpen: () => monitor.socketOpened(),
    onClose: (cause) => monitor.socketClosed(cause?.code === TOKEN_REFRESH_CLOSE_CODE),
  });
  probeSocketWhileOnEventStreams(monitor, socketUrl);
  return [
    splitLink({
      condition: (op) => op.type === "subscription",
      true: preferredTransportLink<AppRouter>({
        monitor,
        ws: wsLink({ client: ws }),
        sse: httpSubscriptionLink({ url: TRPC_PATH, connectionParams }),
      }),
      false: httpBatchLink({ url: TRPC_PATH, ...(auth.kind === "share" ? { headers: { authorization: `Bearer ${auth.token}` } } : {}) }),
    }),
  ];
}

/**
 * While subscriptions are on server-sent events, the (lazy) WebSocket has none to open it:
 * a bare probe socket is tried now and then, and once one opens, subscriptions move back.
 */
function probeSocketWhileOnEventStreams(monitor: ConnectionMonitor, url: string): void {
  let timer: ReturnType<typeof setInterval> | undefined;
  const probe = () => {
    const socket = new WebSocket(url);
    socket.onopen = () => {
      socket.close();
      monitor.socketReachable();
    };
    socket.onerror = () => socket.close();
  };
  monitor.subscribe(() => {
    const onEventStreams = monitor.subscriptionTransport === "sse";
    if (onEventStreams && timer === undefined) timer = setInterval(probe, SOCKET_PROBE_MS);
    if (!onEventStreams && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  });
}
