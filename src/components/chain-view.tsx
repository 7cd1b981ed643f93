"use client";

import { estimateChainTimeLeft } from "@/lib/chain-estimate";
import { chainByRole, chainShown, type ChainInfo } from "@/lib/current-chain";
import { formatDuration } from "@/lib/format";
import type { RoleInfo, RunView } from "@/lib/trpc/types";
import { useNow } from "@/lib/use-now";
import { displayStatus } from "./agent-panel";
import { ProgressBar } from "./progress-bar";
import { StatusBadge } from "./status-badge";

const ICON: Record<string, string> = {
  completed: "✓",
  failed: "✕",
  active: "◑",
  queued: "◔",
  retrying: "↻",
  cancelled: "⊘",
  idle: "○",
};

/**
 * The tenant's latest chain, whichever it is, as a chain: its title, each of its agents with
 * its progress, and the estimated time left. `runs` are the newest chain's (see
 * `currentChain`); runs started by hand are no part of it. Before any chain ran: the setup chain.
 */
export function ChainView({
  roles,
  chains,
  runs,
  durations,
}: {
  roles: RoleInfo[];
  chains: ChainInfo[];
  runs: RunView[];
  durations: Record<string, number>;
}) {
  const now = useNow();
  const shown = chainShown(chains, roles, runs);
  const chain = chainByRole(shown?.roles ?? [], runs);
  const running = chain.some(({ run }) => run?.status === "active" || run?.status === "queued");
  const left = now === null ? null : estimateChainTimeLeft(chain, durations, now);

  if (!shown) return null;
  return (
    <section className="card" aria-label={shown.title} data-testid="chain-card">
      <div className="mb-3 flex flex-wrap items-baseline justify-between gap-2">
        <h2 className="font-semibold">{shown.title}</h2>
        <p className="text-sm text-slate-500" data-testid="chain-eta">
          {running
            ? left === null
              ? "No time estimate until each agent has run once"
              : `About ${formatDuration(left)} left`
            : chain.every(({ run }) => run?.status === "completed")
              ? "Done"
              : "Not running"}
        </p>
      </div>
      <ol className="grid gap-3 sm:grid-cols-3">
        {chain.map(({ role, title, run }, i) => {
          const status = displayStatus(run);
          return (
            <li key={role} className="flex flex-col gap-2" data-testid={`chain-${role}`} data-status={status}>
              <div className="flex items-center gap-2 text-sm">
                <span aria-hidden="true" className="text-base">
                  {ICON[status] ?? "○"}
                </span>
                <span className="font-medium">{title}</span>
                {i < chain.length - 1 ? (
                  <span aria-hidden="true" className="ml-auto hidden text-slate-400 sm:inline">
                    →
                  </span>
                ) : null}
              </div>
              <ProgressBar value={run?.progress ?? 0} label={`${title} progress`} status={status} />
              <StatusBadge status={status} />
            </li>
          );
        })}
      </ol>
    </section>
  );
}
