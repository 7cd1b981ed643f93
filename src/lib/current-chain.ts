import type { RouterOutputs, RunView } from "./trpc/types";

/** A named chain as `agent.chains` lists it: name, title, roles in order, and whether new tenants start with it. */
export type ChainInfo = RouterOutputs["agent"]["chains"][number];

/**
 * The runs of the tenant's newest chain as the page knows them now: the chain the server
 * read with the page (`readLatestChain`), each run as fresh as the live feed has it, or a
 * newer chain the feed has seen start since. Runs started by hand never take a chain's
 * place, however many there are.
 */
export function currentChain(loaded: RunView[], live: RunView[]): RunView[] {
  const loadedIds = new Set(loaded.map((r) => r.id));
  const loadedChainId = loaded[0]?.chainId ?? null;
  const loadedSince = loaded.reduce((newest, r) => (r.queuedAt > newest ? r.queuedAt : newest), "");
  // A chain started after the page loaded: its runs arrive with their chainId (agent:queued).
  const newer = live
    .filter((r) => r.chainId !== null && r.chainId !== loadedChainId && r.queuedAt > loadedSince)
    .sort((a, b) => b.queuedAt.localeCompare(a.queuedAt))[0];
  if (newer) return live.filter((r) => r.chainId === newer.chainId);
  const fresh = new Map(
    live
      .filter((r) => loadedIds.has(r.id) || (loadedChainId !== null && r.chainId === loadedChainId))
      .map((r) => [r.id, r]),
  );
  const merged = loaded.map((r) => ({ ...(fresh.get(r.id) ?? r), chainId: r.chainId }));
  const added = [...fresh.values()].filter((r) => !loadedIds.has(r.id));
  return [...merged, ...added];
}

/**
 * The chain the card shows: the one its runs are of (by the name each run keeps), with that
 * chain's title and roles in order; with no runs yet, the setup chain. A chain run from before
 * names were kept counts as the setup chain; one the deployment no longer has shows its runs'
 * roles as they ran. Null when there is nothing to show.
 */
export function chainShown<Role extends { role: string; title: string }>(
  chains: ChainInfo[],
  roles: Role[],
  runs: RunView[],
): { title: string; roles: { role: string; title: string }[] } | null {
  const named = runs.find((r) => r.chainName)?.chainName ?? null;
  const chain = named ? chains.find((c) => c.name === named) : chains.find((c) => c.setup);
  const order = chain?.roles ?? [...new Set(runs.map((r) => r.agentRole))];
  if (order.length === 0) return null;
  const titleOf = (role: string) => roles.find((r) => r.role === role)?.title ?? role;
  return {
    title: chain?.title ?? named ?? "Setup chain",
    roles: order.map((role) => ({ role, title: titleOf(role) })),
  };
}

/** Each role of the chain with its newest run in it, in the chain's order. */
export function chainByRole<Role extends { role: string }>(
  roles: Role[],
  chain: RunView[],
): (Role & { run?: RunView })[] {
  return roles.map((r) => ({
    ...r,
    run: chain.filter((run) => run.agentRole === r.role).sort((a, b) => b.queuedAt.localeCompare(a.queuedAt))[0],
  }));
}
