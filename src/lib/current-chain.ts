import type { RouterOutputs, RunView } from "./trpc/types";

/** A named chain as `agent.chains` lists it: name, title, roles in order, and whether new tenants start with it. */
export type ChainInfo = RouterOutputs["agent"]["chains"][number];

/**
 * The runs of the chain the server named newest (`readLatestChain`), each as fresh as the
 * live feed has it, with the chain's runs queued since. Runs started by hand and runs of
 * other chains never take its place: which chain is newest is the server's call (see
 * `otherChainRun`), so two chains running at once do not make the card flip between them.
 */
export function currentChain(loaded: RunView[], live: RunView[]): RunView[] {
  const loadedIds = new Set(loaded.map((r) => r.id));
  const loadedChainId = loaded[0]?.chainId ?? null;
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
 * The id of the newest run the feed has of a chain other than the loaded one: a chain may
 * have started since, and the page asks the server again whenever this changes.
 */
export function otherChainRun(loaded: RunView[], live: RunView[]): string | undefined {
  const loadedChainId = loaded[0]?.chainId ?? null;
  return live
    .filter((r) => r.chainId !== null && r.chainId !== loadedChainId)
    .sort((a, b) => b.queuedAt.localeCompare(a.queuedAt))[0]?.id;
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
