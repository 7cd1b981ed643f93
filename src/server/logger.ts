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

/**
 * Structured JSON logs. Callers bind tenantId, runId, jobId and connectionId with
 * `logger.child(...)`, and never pass tokens; the redaction below is the second line of
 * defence should one slip into a logged object. `destination` lets tests capture output.
 */
export function createLogger(level: string, name = "pulse", destination?: DestinationStream): Logger {
  const options = { name, level, redact: { paths: REDACTED_PATHS, censor: "[redacted]" } };
  return destination ? pino(options, destination) : pino(options);
}
