"use client";

import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
  wsLink,
  type TRPCLink,
} from "@trpc/client";
import { createTRPCReact } from "@trpc/react-query";
import type { AppRouter } from "@/server/trpc/root";
import type { ConnectionMonitor } from "./connection";
import { subscriptionTransportLink } from "./transport-link";

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

/** The WebSocket's address on the page's own origin. */
export function socketUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss" : "ws"}://${host}${TRPC_PATH}`;
}

/** How long a probe waits for its WebSocket to open. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Opens a bare WebSocket to Pulse and closes it at once: true when the upgrade passed (no
 * token is sent; the server drops an unauthenticated socket anyway). The page probes this way
 * while it uses server-sent events or polling, to return to the WebSocket when it can.
 */
export function probeWebSocket(url: string): () => Promise<boolean> {
  return () =>
    new Promise<boolean>((resolve) => {
      const socket = new WebSocket(url);
      const done = (passed: boolean) => {
        clearTimeout(timer);
        socket.onopen = socket.onerror = socket.onclose = null;
        socket.close(1000);
        resolve(passed);
      };
      const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
      socket.onopen = () => done(true);
      socket.onerror = socket.onclose = () => done(false);
    });
}

/**
 * Subscriptions go over one WebSocket on the page's own origin, or, where it cannot connect
 * (a proxy that refuses upgrades), over server-sent events, moved between the two by
 * `subscriptionTransportLink` as the monitor's transport machine says; queries and mutations
 * over HTTP. Both subscription transports authenticate with `connectionParams`, evaluated on
 * every (re)connect, so each carries a fresh short-lived socket token (the WebSocket in its
 * first message, an event stream in its URL: EventSource cannot set headers). The socket's
 * opens and closes feed the monitor. `onUnauthorized` is called when the credentials are no
 * longer accepted (signed out, a revoked or expired share link).
 *
 * @see https://trpc.io/docs/client/links/wsLink#connection-params
 * @see https://trpc.io/docs/client/links/httpSubscriptionLink#connectionparams
 */
export function createLinks(
  monitor: ConnectionMonitor,
  auth: ClientAuth = SESSION_AUTH,
  onUnauthorized: () => void = signIn,
): TRPCLink<AppRouter>[] {
  // Server rendering never subscribes or fetches through this client (hooks run in effects).
  if (typeof window === "undefined") return [httpBatchLink({ url: `http://localhost${TRPC_PATH}` })];
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
    url: socketUrl(),
    connectionParams,
    retryDelayMs: reconnectDelayMs,
    // Opens only while a subscription needs it, so public pages never ask for a token.
    lazy: { enabled: true, closeMs: 10_000 },
    keepAlive: { enabled: true, intervalMs: 10_000, pongTimeoutMs: 4_000 },
    onOpen: () => monitor.socketOpened(),
    onClose: (cause) => monitor.socketClosed(cause?.code === TOKEN_REFRESH_CLOSE_CODE),
  });
  // Off the WebSocket, its client stops retrying (the monitor's probe looks for it instead);
  // after the link has moved the subscriptions, so their late completions are ignored.
  monitor.onTransportChange((transport) => {
    if (transport !== "ws") queueMicrotask(() => void ws.close());
  });
  return [
    splitLink({
      condition: (op) => op.type === "subscription",
      true: subscriptionTransportLink<AppRouter>({
        transports: monitor,
        ws: wsLink({ client: ws }),
        sse: httpSubscriptionLink({ url: TRPC_PATH, connectionParams }),
      }),
      false: httpBatchLink({
        url: TRPC_PATH,
        ...(auth.kind === "share" ? { headers: { authorization: `Bearer ${auth.token}` } } : {}),
      }),
    }),
  ];
}
