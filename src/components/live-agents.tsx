"use client";

import { useState } from "react";
import { trpc } from "@/lib/trpc/client";
import { useAgentStatus } from "@/lib/trpc/use-agent-status";
import { AgentPanel } from "./agent-panel";
import { StatusBadge } from "./status-badge";

const CONNECTION_LABEL = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" } as const;

/** Every agent of the tenant, updated live over the subscription; starts the setup chain. */
export function LiveAgents() {
  const roles = trpc.agent.roles.useQuery();
  const { byRole, connection } = useAgentStatus();
  const [error, setError] = useState<string | null>(null);
  const runChain = trpc.agent.runChain.useMutation({ onError: (err) => setError(err.message), onSuccess: () => setError(null) });
  const busy = Object.values(byRole).some((r) => r.status === "queued" || r.status === "active");

  return (
    <div className="stack">
      <div className="row" style={{ justifyContent: "space-between" }}>
        <button type="button" onClick={() => runChain.mutate()} disabled={runChain.isPending || busy}>
          {busy ? "Setup chain running…" : "Run setup chain"}
        </button>
        <span aria-live="polite" data-testid="connection">
          <StatusBadge status={connection} label={CONNECTION_LABEL[connection]} />
        </span>
      </div>
      {error ? <div className="error" role="alert">{error}</div> : null}
      <div className="grid">
        {(roles.data ?? []).map((r) => (
          <AgentPanel key={r.role} role={r.role} title={r.title} run={byRole[r.role]} />
        ))}
      </div>
    </div>
  );
}
