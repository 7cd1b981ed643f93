/**
 * A chain: roles run one after another, each starting when the one before completes (its
 * `agent:completed` names the next as `nextAgent`). Chains are named, so `agent.runChain`
 * starts any of them, and one may be the chain every new tenant starts with.
 */
export interface ChainDefinition {
  /** Lowercase letters, digits and dashes: what `agent.runChain({ chain })` takes. */
  name: string;
  /** Shown on dashboards (default: the name). */
  title?: string;
  /** The roles in order, run by Pulse's own agents or by external ones. */
  roles: readonly string[];
  /**
   * The first role's input when the caller gives none, from the tenant it runs for (a setup
   * chain researches the company by its name). Each later role gets what the one before parsed.
   */
  input?: (tenant: { id: string; name: string }) => Record<string, unknown>;
  /**
   * The chain (re)writes the tenant's context file: starting it marks the current file pending
   * on every dashboard until the writer reports it generating.
   */
  writesContextFile?: boolean;
}

/** What dashboards call a chain: its title, or its name when it has none. */
export const chainTitle = (chain: Pick<ChainDefinition, "name" | "title">): string => chain.title ?? chain.name;
