import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { PulseRouter } from "./router.js";

/** Every client type comes from the router: no second schema, no hand-written copies. */
export type RouterOutputs = inferRouterOutputs<PulseRouter>;
export type RouterInputs = inferRouterInputs<PulseRouter>;
/** A run as Pulse reports it: status, phase, progress, steps, timestamps (ISO strings). */
export type RunView = RouterOutputs["agent"]["get"];
export type AgentFeedEntry = RouterOutputs["agent"]["events"]["items"][number];
export type AgentFeedItem = AgentFeedEntry["item"];
export type ContextFeedEntry = RouterOutputs["context"]["events"]["items"][number];
export type ContextFeedItem = ContextFeedEntry["item"];
/** One event of a run (queued, active, progress, step, log, completed, failed, …). */
export type AgentEvent = Exclude<AgentFeedItem, { type: "snapshot" } | { type: "resync" }>;
export type LogPage = RouterOutputs["agent"]["logs"];
export type OutputPage = RouterOutputs["agent"]["output"];
export type ContextView = NonNullable<RouterOutputs["context"]["get"]>;
/** A role as the pages list it: its title, whether it runs outside Pulse, whether the setup chain has it. */
export type RoleInfo = RouterOutputs["agent"]["roles"][number];
