import type { RunView } from "./trpc/types";

/**
 * Time left for a running chain, in ms: the running agent's typical duration minus what it
 * has used, plus the typical duration of each agent still to come. Null when the chain is
 * not running, or when an agent still to finish has no past run to learn from.
 */
export function estimateChainTimeLeft(
  chain: { role: string; run?: RunView }[],
  typicalMs: Record<string, number>,
  now: number,
): number | null {
  if (!chain.some(({ run }) => run?.status === "active" || run?.status === "queued")) return null;
  let left = 0;
  for (const { role, run } of chain) {
    if (run?.status === "completed") continue;
    const typical = typicalMs[role];
    if (typical === undefined) return null;
    left +=
      run?.status === "active" && run.startedAt ? Math.max(0, typical - (now - Date.parse(run.startedAt))) : typical;
  }
  return left;
}
