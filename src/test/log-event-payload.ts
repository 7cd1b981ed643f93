/**
 * A stream entry's payload for tests and benches that drive the stream directly: a log line
 * of a placeholder run, counted `seq`, stamped now.
 */
export function logEventPayload(tenantId: string, message: string, seq: number): string {
  return JSON.stringify({
    type: "agent:log",
    tenantId,
    runId: "r",
    jobId: "r",
    queue: "q",
    agentRole: "q",
    attempt: 1,
    level: "info",
    message,
    seq,
    at: new Date().toISOString(),
  });
}
