"use client";

import { useState } from "react";
import type { ChainInfo } from "@/lib/current-chain";
import { trpc } from "@/lib/trpc/client";
import { useLatestChain } from "@/lib/use-latest-chain";
import type { ContextView, RoleInfo, RunView } from "@/lib/trpc/types";
import { usePulseAgents, usePulseContext } from "@pulse/client/react";
import { ChainView } from "./chain-view";
import { LocalTime } from "./local-time";
import { StatusBadge } from "./status-badge";

const STATUS_TEXT = {
  pending: "Waiting for the setup agents to start.",
  generating: "The context file writer is working on it.",
  completed: "Ready for your review.",
  approved: "Approved.",
} as const;

export interface ContextSettingsProps {
  id: string;
  runs: RunView[];
  context: ContextView | null;
  durations: Record<string, number>;
  /** The runs of the tenant's newest chain, read with the page. */
  chain: RunView[];
  roles: RoleInfo[];
  chains: ChainInfo[];
}

/**
 * The context file page: the setup chain's agents live, then the content and an Approve
 * banner the moment the file is completed, and its approval on every open tab.
 */
export function ContextSettings({
  id,
  runs,
  context: initialContext,
  durations,
  chain,
  roles,
  chains,
}: ContextSettingsProps) {
  const { state } = usePulseAgents({ initial: { id, runs } });
  const { context } = usePulseContext({ initial: { id, context: initialContext } });
  const [error, setError] = useState<string | null>(null);
  const approve = trpc.context.approve.useMutation({
    onError: (e) => setError(e.message),
    onSuccess: () => setError(null),
  });
  const status = context?.status ?? "pending";
  const chainRuns = useLatestChain(chain, Object.values(state.runs));
  const chainRunning = chainRuns.some((r) => r.status === "active" || r.status === "queued");

  return (
    <div className="flex flex-col gap-6">
      <ChainView roles={roles} chains={chains} runs={chainRuns} durations={durations} />
      <section
        className="card flex flex-col gap-3"
        aria-labelledby="context-file"
        data-testid="context-file"
        data-status={status}
        data-version={context?.version ?? 0}
      >
        <div className="flex flex-wrap items-center gap-3">
          <h2 id="context-file" className="font-semibold">
            Context file
          </h2>
          <StatusBadge
            status={
              status === "approved"
                ? "completed"
                : status === "generating"
                  ? "active"
                  : status === "pending"
                    ? "queued"
                    : "completed"
            }
            label={status}
          />
          {context?.version ? <span className="text-sm text-slate-500">version {context.version}</span> : null}
        </div>
        <p className="text-sm text-slate-600" aria-live="polite">
          {status === "pending" && chainRunning
            ? "The setup agents are gathering what the writer needs."
            : STATUS_TEXT[status]}
          {status === "approved" && context?.approvedBy ? (
            <>
              {` By ${context.approvedBy}`}
              {context.approvedAt ? (
                <>
                  {" at "}
                  <LocalTime iso={context.approvedAt} />
                </>
              ) : null}
              .
            </>
          ) : null}
        </p>
        {(status === "completed" || status === "approved") && context?.content ? (
          <pre
            className="max-h-[28rem] overflow-auto whitespace-pre-wrap rounded-md bg-slate-50 p-3 text-sm"
            data-testid="context-content"
            tabIndex={0}
            role="region"
            aria-label="Context file content"
          >
            {context.content}
          </pre>
        ) : null}
        {/* After the text it asks the reader to read. */}
        {status === "completed" && context ? (
          <div
            className="flex flex-wrap items-center gap-3 rounded-lg border border-accent/40 bg-indigo-50 p-3"
            role="region"
            aria-label="Approval"
            data-testid="approve-banner"
          >
            <p className="text-sm">Read it through, then approve version {context.version} so your agents use it.</p>
            <button
              type="button"
              className="btn ml-auto"
              disabled={approve.isPending}
              onClick={() => approve.mutate({ version: context.version })}
            >
              Approve
            </button>
          </div>
        ) : null}
        {error ? (
          <p className="text-sm text-bad" role="alert">
            {error}
          </p>
        ) : null}
      </section>
    </div>
  );
}
