// The dashboard reads Pulse's types from the client package, as an outside app does.
export type {
  AgentEvent,
  AgentFeedEntry,
  AgentFeedItem,
  ContextFeedEntry,
  ContextFeedItem,
  ContextView,
  LogPage,
  OutputPage,
  RoleInfo,
  RouterInputs,
  RouterOutputs,
  RunView,
} from "@pulse/client";
