import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
  wsLink,
  type TRPCClient,
  type TRPCLink,
} from "@trpc/client";
import { ConnectionMonitor } from "./connection.js";
import { withDeadline } from "./deadline.js";
import type { PulseRouter } from "./router.js";
import { subscriptionTransportLink } from "./transport-link.js";

/** Pulse's API path, on Pulse's origin: HTTP, the WebSocket and event streams alike. */
export const TRPC_PATH = "/api/trpc";

/** The server closes a socket with this code shortly before its token expires. */
const TOKEN_REFRESH_CLOSE_CODE = 4000;
/** The server closes a socket with this code when it is over one of its connection caps. */
const OVER_CAP_CLOSE_CODE = 4429;
/** How long a probe waits for its WebSocket to open. */
const PROBE_TIMEOUT_MS = 5_000;
/**
 * How long a WebSocket's opening handshake may take before the client drops it and tries
 * again: a connection that a proxy or a hung server accepted and never answers would
 * otherwise hold tRPC's client (which waits for `open` or `error`, with no deadline) forever.
 */
export const WS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long `getToken` may take before that (re)connect fails and the next one asks again. */
export const TOKEN_TIMEOUT_MS = 10_000;

export interface PulseClientOptions {
  /** Pulse's origin, e.g. `https://pulse.example.com`; default: the page's own origin. */
  url?: string;
  /**
   * A token Pulse accepts (one your backend minted with `POST /api/admin/tokens`), or the admin
   * API's answer itself (`{ token, expiresAt }`: kept and reused until a minute before it
   * expires). Called when the WebSocket or an event stream (re)connects, and for HTTP calls
   * when `bearerOverHttp` is on. An answer that takes longer than `TOKEN_TIMEOUT_MS` is given
   * up on, and `signal` aborts: pass it to your `fetch`, so a request that never ends does not
   * stay open.
   */
  getToken: (context: { signal: AbortSignal }) => TokenAnswer | Promise<TokenAnswer>;
  /**
   * Send the token as `Authorization: Bearer` on queries and mutations (default: true). Pulse's
   * own dashboard turns it off: its HTTP calls carry the session cookie instead.
   */
  bearerOverHttp?: boolean;
  /** Called when Pulse no longer accepts the credentials (an expired or revoked token). */
  onUnauthorized?: () => void;
}

/** A token, or a token with its expiry (an ISO date, as the admin API answers, or ms since the epoch). */
export type TokenAnswer = string | { token: string; expiresAt: string | number };

/** A token with an expiry is reused until this long before it: the server asks sockets to renew 30 s before. */
const TOKEN_REUSE_MARGIN_MS = 60_000;

/** A typed Pulse client and the monitor that moves its subscriptions between transports. */
export interface PulseClient {
  /** The tRPC client: `client.trpc.agent.get.query({ runId })`, `client.trpc.agent.onStatus.subscribe(…)`. */
  readonly trpc: TRPCClient<PulseRouter>;
  /** Which transport carries subscriptions now, and whether the hooks should poll instead. */
  readonly monitor: ConnectionMonitor;
  /** What to do when Pulse rejects the credentials (the option, or nothing). */
  readonly onUnauthorized: () => void;
  /** Closes the WebSocket and stops the monitor's timers. */
  close(): void;
}

/**
 * A Pulse client: subscriptions over one WebSocket, or, where it cannot connect (a proxy that
 * refuses upgrades), over server-sent events, or, when both fail, not at all while the hooks
 * poll the query twins (`agent.events`, `context.events`); a probe returns to the WebSocket
 * when upgrades pass again. Queries and mutations go over HTTP.
 */
export function createPulseClient(options: PulseClientOptions): PulseClient {
  const base = (options.url ?? pageOrigin()).replace(/\/+$/, "");
  const wsUrl = `${base.replace(/^http/, "ws")}${TRPC_PATH}`;
  const onUnauthorized = options.onUnauthorized ?? (() => {});
  const monitor = new ConnectionMonitor(typeof WebSocket === "undefined" ? {} : { probe: probeWebSocket(wsUrl) });
  const { links, closeSocket } = createLinks({ ...options, base, wsUrl, monitor, onUnauthorized });
  return {
    trpc: createTRPCClient<PulseRouter>({ links }),
    monitor,
    onUnauthorized,
    close() {
      monitor.close();
      closeSocket();
    },
  };
}

function pageOrigin(): string {
  if (typeof window === "undefined") throw new Error("createPulseClient: pass `url` outside a browser");
  return window.location.origin;
}

/** Exponential backoff with jitter, so a fleet of tabs does not reconnect in lockstep. */
export function reconnectDelayMs(attempt: number): number {
  const ceiling = Math.min(10_000, 500 * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * `Base` (the platform's WebSocket), dropped when its opening handshake has not finished
 * within `timeoutMs`: closing a connecting socket fails it, with `error` and `close` events,
 * so the client's reconnect loop goes on instead of waiting forever.
 */
export function withHandshakeDeadline(Base: typeof WebSocket, timeoutMs = WS_HANDSHAKE_TIMEOUT_MS): typeof WebSocket {
  return class extends Base {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      const timer = setTimeout(() => {
        if (this.readyState === Base.CONNECTING) this.close();
      }, timeoutMs);
      const stop = () => clearTimeout(timer);
      this.addEventListener("open", stop);
      this.addEventListener("close", stop);
    }
  };
}

/**
 * Opens a bare WebSocket to Pulse and closes it at once: true when the upgrade passed (no
 * token is sent; the server drops an unauthenticated socket anyway). The monitor probes this
 * way while subscriptions use server-sent events or polling, to return to the WebSocket.
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
 * Both subscription transports authenticate with `connectionParams`, evaluated on every
 * (re)connect, so each carries a fresh token (the WebSocket in its first message, an event
 * stream in its URL: EventSource cannot set headers). The socket's opens and closes feed the
 * monitor, and `subscriptionTransportLink` moves subscriptions as the monitor says.
 *
 * @see https://trpc.io/docs/client/links/wsLink#connection-params
 * @see https://trpc.io/docs/client/links/httpSubscriptionLink#connectionparams
 */
function createLinks(options: PulseClientOptions & { base: string; wsUrl: string; monitor: ConnectionMonitor }) {
  const { monitor, onUnauthorized } = options;
  const httpUrl = `${options.base}${TRPC_PATH}`;
  const tokens = new TokenCache(async (signal) => {
    try {
      return await options.getToken({ signal });
    } catch (error) {
      // The credentials behind the token are gone (signed out, revoked): no reconnect can succeed.
      if (error instanceof TRPCClientError && error.data?.code === "UNAUTHORIZED") onUnauthorized?.();
      throw error;
    }
  });
  const token = () => tokens.get();
  const connectionParams = async () => ({ token: await token() });
  const ws = createWSClient({
    url: options.wsUrl,
    ...(typeof WebSocket === "undefined" ? {} : { WebSocket: withHandshakeDeadline(WebSocket) }),
    connectionParams,
    retryDelayMs: reconnectDelayMs,
    // Opens only while a subscription needs it.
    lazy: { enabled: true, closeMs: 10_000 },
    keepAlive: { enabled: true, intervalMs: 10_000, pongTimeoutMs: 4_000 },
    onOpen: () => monitor.socketOpened(),
    onClose: (cause) => {
      if (cause?.code === OVER_CAP_CLOSE_CODE) return monitor.socketRefused();
      const refresh = cause?.code === TOKEN_REFRESH_CLOSE_CODE;
      if (refresh) tokens.forget();
      monitor.socketClosed(refresh);
    },
  });
  // Off the WebSocket, its client stops retrying (the monitor's probe looks for it instead);
  // after the link has moved the subscriptions, so their late completions are ignored.
  monitor.onTransportChange((transport) => {
    if (transport !== "ws") queueMicrotask(() => void ws.close());
  });
  const bearer = options.bearerOverHttp ?? true;
  const links: TRPCLink<PulseRouter>[] = [
    splitLink({
      condition: (op) => op.type === "subscription",
      true: subscriptionTransportLink<PulseRouter>({
        transports: monitor,
        ws: wsLink({ client: ws }),
        sse: httpSubscriptionLink({ url: httpUrl, connectionParams }),
      }),
      false: httpBatchLink({
        url: httpUrl,
        ...(bearer ? { headers: async () => ({ authorization: `Bearer ${await token()}` }) } : {}),
      }),
    }),
  ];
  return { links, closeSocket: () => void ws.close() };
}

/**
 * The last token `getToken` answered with an expiry, reused until shortly before it; one fetch
 * at a time, given up on (and its signal aborted) after `timeoutMs`: every transport waits on
 * this fetch, so one that never ends would keep the page from ever connecting again.
 */
export class TokenCache {
  private kept: { token: string; expiresAt: number } | null = null;
  private pending: Promise<string> | null = null;

  constructor(
    private readonly fetchToken: (signal: AbortSignal) => Promise<TokenAnswer>,
    private readonly now: () => number = Date.now,
    private readonly timeoutMs = TOKEN_TIMEOUT_MS,
  ) {}

  get(): Promise<string> {
    if (this.kept && this.kept.expiresAt - TOKEN_REUSE_MARGIN_MS > this.now()) return Promise.resolve(this.kept.token);
    this.pending ??= withDeadline(this.fetchToken, this.timeoutMs, "getToken")
      .then((answer) => {
        if (typeof answer === "string") return answer;
        const expiresAt = typeof answer.expiresAt === "number" ? answer.expiresAt : Date.parse(answer.expiresAt);
        if (Number.isFinite(expiresAt)) this.kept = { token: answer.token, expiresAt };
        return answer.token;
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  /** Fetch a fresh one next time (the server asked for a new token). */
  forget(): void {
    this.kept = null;
  }
}
