import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/** Structured JSON logs; callers add tenantId, runId, connectionId as bindings, never tokens. */
export function createLogger(level: string, name = "pulse"): Logger {
  return pino({
    name,
    level,
    redact: { paths: ["token", "password", "*.token", "*.password", "authorization", "*.authorization"], censor: "[redacted]" },
  });
}
