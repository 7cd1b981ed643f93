import { z } from "zod";

/**
 * Every setting Pulse reads, validated once at start-up. Nothing else reads `process.env`:
 * infrastructure takes its settings through constructors, and the entry points pass them on
 * from here. Each variable is documented in `.env.example`.
 */
const flagWords = z.enum(["true", "false", "1", "0", "yes", "no"], { message: "must be true or false" });
const isTrue = (v: string) => v === "true" || v === "1" || v === "yes";
const flag = (fallback: boolean) => flagWords.default(fallback ? "true" : "false").transform(isTrue);
/** A flag whose default is another setting's value: undefined when unset. */
const flagOrUnset = () => flagWords.optional().transform((v) => (v === undefined ? undefined : isTrue(v)));

/**
 * The HTTP server's listen backlog by default: room for a deploy's reconnect wave. Node's
 * own default, 511, overflows when thousands of dashboards reconnect at once, and a
 * handshake the kernel dropped is retried on TCP's doubling schedule (1, 2, 4, 8… s), which
 * stretched 10,000-client storms here to up to a minute. Linux caps it at
 * `net.core.somaxconn` (4096 since 5.4).
 */
export const LISTEN_BACKLOG = 4096;

const int = (fallback: number, min: number, max: number) =>
  z.coerce
    .number({ message: "must be a number" })
    .int({ message: "must be a whole number" })
    .min(min, { message: `must be at least ${min}` })
    .max(max, { message: `must be at most ${max}` })
    .default(fallback);

const url = (protocols: string[]) =>
  z
    .string()
    .url({ message: "must be a URL" })
    .refine((v) => protocols.some((p) => v.startsWith(`${p}://`)), {
      message: `must start with ${protocols.map((p) => `${p}://`).join(" or ")}`,
    });

/** A comma-separated list, each item checked by `item`; empty means none. */
const list = (item: z.ZodType<string, string>, what: string) =>
  z
    .string()
    .max(4000)
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item, { message: `must be a comma-separated list of ${what}` }).max(100));

const origin = z.string().refine(
  (v) => {
    try {
      const url = new URL(v);
      return (url.protocol === "http:" || url.protocol === "https:") && url.origin === v.replace(/\/$/, "");
    } catch {
      return false;
    }
  },
  { message: "must list origins like https://pulse.example.com (scheme, host and port only)" },
);

export const envSchema = z
  .object({
    /**
     * Unset: a local install (`npm start`), which may start a private redis-server and builds
     * the dashboard when its sources changed. production: a deployment, which needs REDIS_URL
     * and a dashboard built beforehand (`npm run build`). development: `npm run dev`.
     */
    NODE_ENV: z.enum(["development", "production", "test"]).optional(),
    HOST: z.string().min(1).default("0.0.0.0"),
    PORT: int(3000, 0, 65535),
    /** Connections the kernel holds for the server before it accepts them (capped by net.core.somaxconn). */
    LISTEN_BACKLOG: int(LISTEN_BACKLOG, 1, 65535),
    /** Postgres connection string; when absent, an embedded PGlite database is used. */
    DATABASE_URL: url(["postgres", "postgresql"]).optional(),
    PGLITE_DIR: z.string().min(1).default(".data/pglite"),
    /** Prepare each statement once per PostgreSQL connection; false behind PgBouncer in transaction mode before 1.21. */
    DATABASE_PREPARED_STATEMENTS: flag(true),
    /** One standalone Redis's connection string; when absent (and no REDIS_CLUSTER_NODES), a private redis-server is started from PATH. */
    REDIS_URL: url(["redis", "rediss"]).optional(),
    /** A Redis Cluster's seed nodes, `host:port,host:port,…`: every connection becomes a cluster client. Excludes REDIS_URL. */
    REDIS_CLUSTER_NODES: list(
      z
        .string()
        .regex(/^[A-Za-z0-9._-]+:\d{1,5}$/, { message: "must list nodes as host:port" })
        .refine(
          (v) => {
            const port = Number(v.slice(v.lastIndexOf(":") + 1));
            return port >= 1 && port <= 65535;
          },
          { message: "must list nodes as host:port with a port from 1 to 65535" },
        ),
      "host:port nodes",
    ),
    /** Talk TLS to every cluster node (what `rediss://` says for REDIS_URL). */
    REDIS_CLUSTER_TLS: flag(false),
    /** ACL user and password for every cluster node (for REDIS_URL, they go in the URL). */
    REDIS_CLUSTER_USERNAME: z.string().min(1).max(256).optional(),
    REDIS_CLUSTER_PASSWORD: z.string().min(1).max(512).optional(),
    REDIS_SERVER_BIN: z.string().min(1).default("redis-server"),
    /** Port of the private redis-server (unset: a free one); ignored with REDIS_URL. */
    REDIS_SERVER_PORT: int(0, 0, 65535),
    /** Namespace for every Redis key Pulse and its BullMQ queues write. */
    REDIS_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, { message: "must be 1-32 letters, digits, _ or -" })
      .default("pulse"),
    /** HMAC key for session tokens; generated into .data/ on first start when absent. */
    AUTH_SECRET: z.string().min(32, { message: "must be at least 32 characters" }).optional(),
    SESSION_TTL_HOURS: int(24 * 7, 1, 24 * 365),
    /** Mark the session cookie Secure; set it when Pulse is served over HTTPS. */
    COOKIE_SECURE: flag(false),
    /** Run BullMQ workers in the web process (false: start them with `npm run worker`). */
    PULSE_WORKERS: flag(true),
    /** Serve the Next.js dashboard (false: API and WebSocket only). */
    PULSE_WEB: flag(true),
    /** Run the demo agents and their setup chain, and create the demo tenant and user on start. */
    PULSE_DEMO: flag(true),
    /** The module exporting this deployment's agents and chains (default: `pulse.config.ts` in the working directory, if there is one). */
    PULSE_CONFIG: z.string().min(1).max(1000).optional(),
    /** Create the demo tenant and user on start (default: as PULSE_DEMO; false runs the demo agents for other tenants only). */
    PULSE_DEMO_ACCOUNT: flagOrUnset(),
    /** Let anyone create a tenant with `auth.register` (false: tenants come from the admin API, or the demo). */
    PULSE_REGISTRATION: flag(true),
    /** Key of the admin API (`/api/admin/…`) a product's backend calls to keep its tenants and users and mint their tokens; unset: the API answers 404. */
    PULSE_ADMIN_KEY: z.string().min(32, { message: "must be at least 32 characters" }).max(512).optional(),
    /** Lifetime of a token minted through the admin API unless the call names one (at most a day). */
    PULSE_TOKEN_TTL_SECONDS: int(900, 60, 86_400),
    /** Scales the simulated work of the demo agents (0.1 = ten times faster). */
    DEMO_SPEED: z.coerce.number({ message: "must be a number" }).positive({ message: "must be above 0" }).default(1),
    /** Probability that a demo agent's first attempt fails and is retried. */
    DEMO_FAILURE_RATE: z.coerce.number({ message: "must be a number" }).min(0).max(1).default(0.15),
    WORKER_CONCURRENCY: int(4, 1, 256),
    WORKER_LOCK_DURATION_MS: int(30_000, 1_000, 600_000),
    WORKER_STALLED_INTERVAL_MS: int(30_000, 500, 600_000),
    WORKER_ATTEMPTS: int(3, 1, 20),
    /** On SIGINT/SIGTERM, how long running jobs may take to finish before they are handed back to the queue. */
    SHUTDOWN_DRAIN_SECONDS: int(10, 0, 3_600),
    EVENT_RETENTION_HOURS: int(24, 1, 24 * 90),
    EVENT_RETENTION_MIN_EVENTS: int(10_000, 100, 10_000_000),
    EVENT_RETENTION_MAX_EVENTS: int(100_000, 1_000, 10_000_000),
    LOG_RETENTION_DAYS: int(30, 1, 3650),
    /** Pages allowed to open the WebSocket and send cookie-authenticated mutations; empty: same origin only. */
    ALLOWED_ORIGINS: list(origin, "origins"),
    /** Take client addresses from X-Forwarded-For; only behind a proxy that sets it. */
    TRUST_PROXY: flag(false),
    /** Largest HTTP request body Pulse reads (tRPC calls and agent reports). */
    HTTP_MAX_BODY_BYTES: int(64 * 1024, 1024, 16 * 1024 * 1024),
    /** Procedures one HTTP request may batch (the WebSocket's cap is WS_MAX_BATCH_REQUESTS). */
    HTTP_MAX_BATCH_REQUESTS: int(32, 1, 1_000),
    /** tRPC calls over HTTP per second from one address, per process; bursts up to twice this. */
    HTTP_CALLS_PER_SECOND_PER_IP: int(100, 1, 1_000_000),
    /** tRPC calls over HTTP per second for one tenant (its sessions and share links), per process; bursts up to twice this. */
    HTTP_CALLS_PER_SECOND_PER_TENANT: int(100, 1, 1_000_000),
    /** Serve /metrics on the public port without a token (otherwise it needs METRICS_TOKEN, or answers 404). */
    METRICS_PUBLIC: flag(false),
    /** Lifetime of the token a browser fetches for its WebSocket. */
    SOCKET_TOKEN_TTL_SECONDS: int(300, 10, 86_400),
    /** How long before a socket token expires the server asks the client to reconnect with a fresh one. */
    WS_TOKEN_REFRESH_LEAD_SECONDS: int(30, 1, 3_600),
    /** How long subscriptions outlive an expired token before they end. */
    WS_TOKEN_GRACE_SECONDS: int(10, 0, 300),
    /** A WebSocket without a valid token is closed after this. */
    WS_AUTH_TIMEOUT_MS: int(5_000, 100, 60_000),
    /** Larger WebSocket frames close the connection (1009). */
    WS_MAX_PAYLOAD_BYTES: int(64 * 1024, 1024, 16 * 1024 * 1024),
    WS_PING_INTERVAL_MS: int(30_000, 100, 600_000),
    WS_PONG_TIMEOUT_MS: int(5_000, 100, 60_000),
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: int(20, 1, 1_000),
    WS_MESSAGES_PER_SECOND: int(50, 1, 100_000),
    WS_MAX_BATCH_REQUESTS: int(32, 1, 1_000),
    WS_MAX_REQUEST_ID_LENGTH: int(64, 8, 1_024),
    /** Unsent output a slow reader may pile up before it is disconnected. */
    WS_MAX_BUFFERED_BYTES: int(4 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    WS_MAX_CONNECTIONS_PER_USER: int(20, 1, 100_000),
    WS_MAX_CONNECTIONS_PER_TENANT: int(200, 1, 1_000_000),
    WS_MAX_CONNECTIONS_PER_IP: int(50, 1, 1_000_000),
    /** Share-link viewers count apart from the tenant's users: these cap them per link and per address. */
    WS_MAX_VIEWERS_PER_SHARE_LINK: int(100, 1, 1_000_000),
    WS_MAX_VIEWERS_PER_IP: int(10, 1, 1_000_000),
    WS_MAX_CONNECTIONS: int(20_000, 1, 10_000_000),
    /**
     * Caps on server-sent-event streams (`httpSubscriptionLink`, where WebSockets are blocked),
     * per API process. A stream carries one subscription where a socket carries all of a page's,
     * so these default to three times the WebSocket's.
     */
    SSE_MAX_STREAMS_PER_USER: int(60, 1, 300_000),
    SSE_MAX_STREAMS_PER_TENANT: int(600, 1, 3_000_000),
    SSE_MAX_STREAMS_PER_IP: int(150, 1, 3_000_000),
    SSE_MAX_VIEWERS_PER_SHARE_LINK: int(300, 1, 3_000_000),
    SSE_MAX_VIEWERS_PER_IP: int(30, 1, 3_000_000),
    SSE_MAX_STREAMS: int(20_000, 1, 10_000_000),
    /**
     * The safety check's round over open WebSockets' sessions and share links (revocations
     * arrive as messages; this catches one missed, or a user deleted in the database directly).
     */
    SESSION_CHECK_INTERVAL_MS: int(60_000, 100, 3_600_000),
    LOGIN_MAX_ATTEMPTS_PER_ACCOUNT: int(10, 1, 100_000),
    LOGIN_MAX_ATTEMPTS_PER_IP: int(100, 1, 1_000_000),
    LOGIN_WINDOW_MINUTES: int(15, 1, 1_440),
    /** Lifetime of the run token an external agent reports with. */
    REPORT_TOKEN_TTL_HOURS: int(24, 1, 24 * 30),
    /** Reports one run may send per second over HTTP. */
    REPORTS_PER_SECOND: int(50, 1, 100_000),
    SHARE_LINK_MAX_HOURS: int(24 * 7, 1, 24 * 365),
    /** Views of a shared run (snapshot, `share.run`, output page) one link's viewers may have per second together, per process. */
    SHARE_VIEWS_PER_SECOND: int(20, 1, 100_000),
    /** Characters of an attempt's output a run keeps; past it, the oldest are dropped. */
    RUN_OUTPUT_MAX_CHARS: int(1_048_576, 65_536, 64 * 1_048_576),
    /** An active external agent's run that reports nothing for this long fails as "agent stopped reporting". */
    EXTERNAL_AGENT_TIMEOUT_SECONDS: int(300, 1, 7 * 86_400),
    /** Roles run by agents outside Pulse, reporting over HTTP; their runs are not queued on BullMQ. */
    EXTERNAL_AGENT_ROLES: list(
      z
        .string()
        .regex(/^[a-z][a-z0-9-]{0,62}$/, { message: "must list roles in lowercase letters, digits and dashes" }),
      "roles",
    ),
    LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
    /** Serve Prometheus metrics at /metrics. */
    METRICS_ENABLED: flag(true),
    /** When set, /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
    METRICS_TOKEN: z
      .string()
      .min(16, { message: "must be at least 16 characters" })
      .max(512, { message: "must be at most 512 characters" })
      .regex(/^\S+$/, { message: "must not contain spaces" })
      .optional(),
    /** Worker processes (`npm run worker`) serve /metrics and /healthz on this port (0: any free one); unset: none. */
    METRICS_PORT: z.coerce
      .number({ message: "must be a number" })
      .int({ message: "must be a whole number" })
      .min(0, { message: "must be at least 0" })
      .max(65535, { message: "must be at most 65535" })
      .optional(),
    /** How often worker processes look for runs whose BullMQ job is gone (a Redis that lost its data). */
    RECONCILE_INTERVAL_MS: int(60_000, 100, 3_600_000),
    /** Runs changed more recently than this are left to their job; past it, a run with no job is ended as failed. */
    RECONCILE_GRACE_MS: int(60_000, 0, 86_400_000),
  })
  .refine((env) => env.WS_TOKEN_REFRESH_LEAD_SECONDS < env.SOCKET_TOKEN_TTL_SECONDS, {
    message: "must be less than SOCKET_TOKEN_TTL_SECONDS, or sockets are never asked to refresh their token",
    path: ["WS_TOKEN_REFRESH_LEAD_SECONDS"],
  })
  .refine((env) => env.WS_TOKEN_REFRESH_LEAD_SECONDS < env.PULSE_TOKEN_TTL_SECONDS, {
    message:
      "must be more than WS_TOKEN_REFRESH_LEAD_SECONDS, or sockets with minted tokens are asked to refresh at once",
    path: ["PULSE_TOKEN_TTL_SECONDS"],
  })
  .refine((env) => env.NODE_ENV !== "production" || env.REDIS_URL !== undefined || env.REDIS_CLUSTER_NODES.length > 0, {
    message:
      "is required when NODE_ENV=production, or REDIS_CLUSTER_NODES (a private redis-server is for a local install only)",
    path: ["REDIS_URL"],
  })
  .refine((env) => env.REDIS_URL === undefined || env.REDIS_CLUSTER_NODES.length === 0, {
    message:
      "cannot be set with REDIS_URL: REDIS_URL is one standalone Redis, REDIS_CLUSTER_NODES a cluster's nodes; set one",
    path: ["REDIS_CLUSTER_NODES"],
  })
  .superRefine((env, ctx) => {
    if (env.REDIS_CLUSTER_NODES.length > 0) return;
    for (const name of ["REDIS_CLUSTER_USERNAME", "REDIS_CLUSTER_PASSWORD"] as const) {
      if (env[name] !== undefined)
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: "applies to REDIS_CLUSTER_NODES only (for REDIS_URL, put it in the URL)",
        });
    }
    if (env.REDIS_CLUSTER_TLS)
      ctx.addIssue({
        code: "custom",
        path: ["REDIS_CLUSTER_TLS"],
        message: "applies to REDIS_CLUSTER_NODES only (for REDIS_URL, use rediss://)",
      });
  });

export type Env = z.infer<typeof envSchema>;

export class EnvError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join("\n")}`);
    this.name = "EnvError";
  }
}

/** Variables whose values are never repeated in an error message. */
const SECRET_VARIABLES = new Set(["AUTH_SECRET", "METRICS_TOKEN", "PULSE_ADMIN_KEY", "REDIS_CLUSTER_PASSWORD"]);

/** A bad value as the error message may show it: secrets hidden, and a URL's password too. */
function shown(name: string, value: string): string {
  if (SECRET_VARIABLES.has(name)) return `${value.length} characters, not shown`;
  return `"${value.replace(/(\/\/[^/:@\s]*):[^@/\s]*@/, "$1:***@")}"`;
}

/** Parses a set of variables; empty strings count as unset so `.env` templates can be copied as they are. */
export function parseEnv(source: Record<string, string | undefined>): Env {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ""));
  const result = envSchema.safeParse(cleaned);
  if (!result.success) {
    throw new EnvError(
      result.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? "");
        const item = typeof issue.path[1] === "number" ? ` (item ${issue.path[1] + 1})` : "";
        const value = cleaned[name];
        return `${name}: ${issue.message}${item}${value === undefined ? "" : ` (got ${shown(name, value)})`}`;
      }),
    );
  }
  return result.data;
}

/** Reads the process environment; the only place that does. */
export function loadEnv(): Env {
  return parseEnv(process.env);
}
