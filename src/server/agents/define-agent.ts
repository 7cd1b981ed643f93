import type { z } from "zod";
import type { LogLevel, RunPhase } from "../events/schema";

/** What an agent's `run` gets: its job, ways to report, and a signal for cancellation. */
export interface AgentContext<TInput = Record<string, unknown>> {
  tenantId: string;
  runId: string;
  agentRole: string;
  /** 1-based attempt number (a retry after a failure or a dead worker is attempt 2). */
  attempt: number;
  input: TInput;
  /** Aborted when the run is cancelled; long work should pass it on or check it. */
  signal: AbortSignal;
  /** Reports progress (0–100, clamped; NaN is refused) with a message people can read (cut to 500 characters). */
  progress(percent: number, message: string, phase?: RunPhase): Promise<void>;
  /** Runs `fn` as a named step (its name, not empty, cut to 200 characters), reported as started, then completed or failed. */
  step<T>(name: string, fn: () => Promise<T> | T): Promise<T>;
  /** Streams a piece of the agent's output text, of any length (sent in 16 KiB pieces). */
  output(chunk: string): Promise<void>;
  /** Adds a line to the run's log (cut to 4,000 characters; an empty one is not sent). */
  log(level: LogLevel, message: string): Promise<void>;
  /** The tenant's context file, for agents that write it. */
  contextFile: {
    markGenerating(): Promise<void>;
    /** Stores the content as the next version, completed and awaiting approval. */
    complete(content: string): Promise<number>;
  };
}

export interface AgentDefinition<TInput = Record<string, unknown>> {
  /** Kebab-case name; also the BullMQ queue's name. */
  role: string;
  /** Shown on dashboards. */
  title?: string;
  /** Jobs one worker process runs at once for this role (default: WORKER_CONCURRENCY). */
  concurrency?: number;
  /**
   * The input a run takes, checked when it is started (`agent.run` answers BAD_REQUEST naming
   * the field) rather than by the agent's attempts; `ctx.input` is what it parsed. A chain's
   * next role gets the input its previous role parsed.
   */
  input?: z.ZodType<TInput>;
  /** Runs of this role one tenant may have queued or running at once (default 1); `agent.run` beyond is CONFLICT. */
  concurrencyPerTenant?: number;
  /**
   * Counts `concurrencyPerTenant` per key of the run's (parsed) input instead of per tenant:
   * `(input) => input.documentId` allows one summarizer per document, any number of documents.
   */
  concurrencyKey?: (input: TInput) => string;
  run(ctx: AgentContext<TInput>): Promise<void>;
}

/**
 * An agent of any input type, for the lists that hold several (a deployment's agents, a
 * worker's definitions): each definition's `run` and `concurrencyKey` take the input its own
 * schema parsed, which no single type but `any` describes.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type AnyAgentDefinition = AgentDefinition<any>;

/** How many runs of a role may be queued or running at once: per tenant, or per key of their input. */
export interface RoleConcurrency {
  perTenant: number;
  key?: (input: Record<string, unknown>) => string;
}

/** A role's concurrency as its definition declares it; one run per tenant when it says nothing (or has no definition). */
export function roleConcurrency(
  agent: Pick<AnyAgentDefinition, "concurrencyPerTenant" | "concurrencyKey"> | undefined,
): RoleConcurrency {
  return {
    perTenant: agent?.concurrencyPerTenant ?? 1,
    ...(agent?.concurrencyKey ? { key: agent.concurrencyKey } : {}),
  };
}

/** What dashboards call an agent: its title, or its role when it has none. */
export function agentTitle(agents: readonly Pick<AgentDefinition, "role" | "title">[], role: string): string {
  return agents.find((a) => a.role === role)?.title ?? role;
}

/** Declares an agent; `createAgentWorker` turns it into a BullMQ worker. With `input`, `ctx.input` has the schema's type. */
export function defineAgent<TSchema extends z.ZodType<Record<string, unknown>>>(
  definition: Omit<AgentDefinition<z.output<TSchema>>, "input"> & { input: TSchema },
): AgentDefinition<z.output<TSchema>>;
export function defineAgent<TInput = Record<string, unknown>>(
  definition: AgentDefinition<TInput>,
): AgentDefinition<TInput>;
export function defineAgent(definition: AnyAgentDefinition): AnyAgentDefinition {
  return definition;
}

/** Thrown when the run's signal aborted; the run was cancelled and reports nothing more. */
export class RunCancelledError extends Error {
  constructor() {
    super("run cancelled");
    this.name = "RunCancelledError";
  }
}
