export {
  createPulseClient,
  probeWebSocket,
  reconnectDelayMs,
  TOKEN_TIMEOUT_MS,
  TokenCache,
  TRPC_PATH,
  WS_HANDSHAKE_TIMEOUT_MS,
} from "./client.js";
export type { PulseClient, PulseClientOptions, TokenAnswer } from "./client.js";
export {
  ConnectionMonitor,
  PROBE_INTERVAL_MS,
  REFUSED_PROBE_DELAY_MS,
  SSE_CONNECT_TIMEOUT_MS,
  WS_CONNECT_TIMEOUT_MS,
  type ConnectionMonitorOptions,
  type ConnectionSnapshot,
  type ConnectionStatus,
} from "./connection.js";
export { DeadlineError } from "./deadline.js";
export { POLL_TIMEOUT_MS } from "./poller.js";
export type { PulseErrorShape, PulseRouter } from "./router.js";
export { TOKEN_EXPIRED } from "./session-messages.js";
export { compareStreamIds, STREAM_ORIGIN } from "./stream-id.js";
export { rateWaitMs, REFUSED_RETRY_MS, refusalWaitMs, retryRefusals } from "./refusals.js";
export { subscriptionTransportLink, WS_RESUBSCRIBE_DELAY_MS, type TransportSwitch } from "./transport-link.js";
export {
  INITIAL_TRANSPORT_STATE,
  nextTransportState,
  WS_FAILURES_BEFORE_SSE,
  type Transport,
  type TransportEvent,
  type TransportState,
} from "./transport-machine.js";
export * from "./state/agent-state.js";
export * from "./state/context-state.js";
export * from "./state/run-state.js";
export type * from "./types.js";
