"use client";

import { useEffect, useMemo, useState } from "react";
import { trpc } from "@/lib/trpc/client";
import type { ChainInfo } from "@/lib/current-chain";
import type { RoleInfo, RunView } from "@/lib/trpc/types";
import { usePulseAgents } from "@pulse/client/react";
import { useLatestChain } from "@/lib/use-latest-chain";
import { useRunNotifications } from "@/lib/use-run-notifications";
import { AgentPanel } from "./agent-panel";
import { ChainView } from "./chain-view";
import { RunList } from "./run-list";
import type { RunInput } from "./run-input-form";

export interface DashboardProps {
  id: string;
  runs: RunView[];
  recent: RunView[];
  durations: Record<string, number>;
  /** The runs of the tenant's newest chain, read with the page. */
  chain: RunView[];
  roles: RoleInfo[];
  /** The deployment's named chains, for the chain card's title and roles. */
  chains: ChainInfo[];
}

/** A Run click not yet confirmed by the server: set at once, replaced by the subscription. */
type Pending = { runId?: string };

export function Dashboard({ id, runs, recent, durations, chain, roles, chains }: DashboardProps) {
  const titles = useMemo(() => Object.fromEntries(roles.map((r) => [r.role, r.title])), [roles]);
  const notifications = useRunNotifications(titles);
  const { state, byRole } = usePulseAgents({ initial: { id, runs }, onEvent: notifications.onEvent });
  const [pending, setPending] = useState<Record<string, Pending>>({});
  const [notices, setNotices] = useState<Record<string, string | null>>({});
  const utils = trpc.useUtils();
  const run = trpc.agent.run.useMutation();
  const cancel = trpc.agent.cancel.useMutation();
  const retry = trpc.agent.retry.useMutation();
  const typical = trpc.agent.durations.useQuery(undefined, { initialData: durations });

  // The server's confirmation (its agent:queued event) replaces the optimistic state.
  const optimistic = (role: string) => {
    const started = pending[role];
    return started !== undefined && !(started.runId && state.runs[started.runId]);
  };

  // New completions make the time-left estimates better.
  const completedCount = Object.values(state.runs).filter((r) => r.status === "completed").length;
  useEffect(() => {
    void utils.agent.durations.invalidate();
  }, [completedCount, utils]);

  const notify = (role: string, notice: string | null) => setNotices((n) => ({ ...n, [role]: notice }));

  /** Cancels or retries a role's run; a refusal is shown on the role's panel. */
  function act(role: string, verb: "cancel" | "retry", mutation: typeof cancel | typeof retry, runId: string) {
    notify(role, null);
    mutation.mutate({ runId }, { onError: (error) => notify(role, `Could not ${verb}: ${error.message}`) });
  }

  function start(role: string, input?: RunInput) {
    setPending((p) => ({ ...p, [role]: {} }));
    notify(role, null);
    run.mutate(
      { agentRole: role, ...(input ? { input } : {}) },
      {
        onSuccess: (result) => setPending((p) => (p[role] ? { ...p, [role]: { runId: result.runId } } : p)),
        onError: (error) => {
          setPending(({ [role]: _, ...rest }) => rest);
          notify(role, error.data?.code === "CONFLICT" ? "Already running" : `Could not start: ${error.message}`);
        },
      },
    );
  }

  const list = useMemo(() => {
    const merged = new Map(recent.map((r) => [r.id, r]));
    for (const r of Object.values(state.runs)) merged.set(r.id, r);
    return [...merged.values()].sort((a, b) => b.queuedAt.localeCompare(a.queuedAt)).slice(0, 30);
  }, [recent, state.runs]);

  const chainRuns = useLatestChain(chain, Object.values(state.runs));

  return (
    <div className="flex flex-col gap-6">
      <ChainView roles={roles} chains={chains} runs={chainRuns} durations={typical.data ?? durations} />
      <div className="grid gap-4 md:grid-cols-3">
        {roles.map((r) => (
          <AgentPanel
            key={r.role}
            role={r.role}
            title={r.title}
            external={r.external}
            run={byRole[r.role]}
            optimistic={optimistic(r.role)}
            notice={notices[r.role]}
            inputFields={r.input}
            onRun={(input) => start(r.role, input)}
            onCancel={(runId) => act(r.role, "cancel", cancel, runId)}
            onRetry={(runId) => act(r.role, "retry", retry, runId)}
          />
        ))}
      </div>
      <RunList runs={list} titles={titles} externalRoles={roles.filter((r) => r.external).map((r) => r.role)} />
      {notifications.permission === "default" ? (
        <p className="text-sm text-slate-500">
          <button type="button" className="btn-quiet" onClick={() => void notifications.ask()}>
            Notify me when a run finishes
          </button>{" "}
          (only while this tab is in the background)
        </p>
      ) : null}
    </div>
  );
}
