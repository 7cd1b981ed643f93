export { PulseProvider, usePulseClient, usePulseConnection } from "./provider.js";
export {
  usePulseFeed,
  usePulseSubscription,
  type AppliedDetail,
  type FeedEntry,
  type FeedPage,
  type PulseFeedOptions,
} from "./use-pulse-feed.js";
export { usePulseRun, usePulseRunFeed, type PulseRun, type PulseRunOptions } from "./use-pulse-run.js";
export { usePulseAgents, type PulseAgents, type PulseAgentsOptions } from "./use-pulse-agents.js";
export { usePulseContext, type PulseContext, type PulseContextOptions } from "./use-pulse-context.js";
