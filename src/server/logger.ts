import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/** Keys whose values are credentials wherever they appear, at the top level or one or two levels down. */
const SECRET_KEYS = [
  "token",
  "reportToken",
  "socketToken",
  "password",
  "secret",
  "authorization",
  "cookie",
  '["set-cookie"]',
  "connectionParams",
  "AUTH_SECRET",
  "METRICS_TOKEN",
  "DATABASE_URL",
  "REDIS_URL",
];

/**
 * Every path pino censors: each secret key at depth one to three (`token`, `*.token`,
 * `*.*.token`), which covers `headers.authorization`, `req.headers.cookie` and
 * `info.connectionParams`.
 *
 * @see https://getpino.io/#/docs/redaction
 */
export const REDACTED_PATHS = SECRET_KEYS.flatMap((key) => {
  const member = key.startsWith("[") ? key : `.${key}`;
  return [key, `*${member}`, `*.*${member}`];
});

/** Longest string kept from an error's command argument; Lua scripts and payloads are cut to this. */
export const MAX_ARGUMENT_CHARS = 200;
/** Longest string kept anywhere else in a logged error (message, stack, other fields). */
export const MAX_ERROR_TEXT_CHARS = 2_000;
/** Most command arguments, array items or nested levels kept from a logged error. */
const MAX_ITEMS = 20;
const MAX_DEPTH = 4;

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

/** A copy of `value` with every string, array and nesting level cut to a bound. */
function bounded(value: unknown, maxChars: number, depth = 0): unknown {
  if (typeof value === "string") return cut(value, maxChars);
  if (value === null || typeof value !== "object") return value;
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (depth >= MAX_DEPTH) return "[…]";
  if (Array.isArray(value)) {
    const kept = value.slice(0, MAX_ITEMS).map((item) => bounded(item, maxChars, depth + 1));
    return value.length > MAX_ITEMS ? [...kept, `… ${value.length - MAX_ITEMS} more`] : kept;
  }
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>))
    copy[key] = bounded(item, maxChars, depth + 1);
  return copy;
}

/**
 * pino's error serializer, with every string cut to a bound: ioredis puts the failed
 * command on its errors, and a BullMQ command that fails is often an EVAL carrying its whole
 * Lua script (10 KB and more), so the command keeps its name and short arguments only.
 *
 * @see https://getpino.io/#/docs/api?id=serializers-object
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return bounded(err, MAX_ERROR_TEXT_CHARS);
  const { command, ...rest } = pino.stdSerializers.err(err) as Record<string, unknown> & {
    command?: { name?: unknown; args?: unknown };
  };
  const serialized = bounded(rest, MAX_ERROR_TEXT_CHARS) as Record<string, unknown>;
  if (command && typeof command === "object") {
    serialized.command = {
      name: bounded(command.name, MAX_ARGUMENT_CHARS),
      args: bounded(command.args, MAX_ARGUMENT_CHARS),
    };
  }
  return serialized;
}

/**
 * Structured JSON logs. Callers bind tenantId, runId, jobId and connectionId with
 * `logger.child(...)`, and never pass tokens; the redaction below is the second line of
 * defence should one slip into a logged object. `destination` lets tests capture output.
 */
export function createLogger(level: string, name = "pulse", destination?: DestinationStream): Logger {
  const options = {
    name,
    level,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    serializers: { err: serializeError, error: serializeError },
  };
  return destination ? pino(options, destination) : pino(options);
}
