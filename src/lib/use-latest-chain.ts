"use client";

import { useEffect } from "react";
import { currentChain, otherChainRun } from "./current-chain";
import { trpc } from "./trpc/client";
import type { RunView } from "./trpc/types";

/**
 * The runs of the tenant's newest chain, the one started last (`agent.latestChain` decides),
 * as fresh as the live feed has them. A run of another chain in the feed asks the server
 * again, so a chain that started since takes the card, and one that started earlier but
 * queues its next role later never does.
 */
export function useLatestChain(initial: RunView[], live: RunView[]): RunView[] {
  const utils = trpc.useUtils();
  const { data: loaded } = trpc.agent.latestChain.useQuery(undefined, { initialData: initial, staleTime: Infinity });
  const other = otherChainRun(loaded, live);
  useEffect(() => {
    if (other) void utils.agent.latestChain.invalidate();
  }, [other, utils]);
  return currentChain(loaded, live);
}
