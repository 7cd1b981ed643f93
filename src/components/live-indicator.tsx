"use client";

import { useConnection, useConnectionMonitor } from "@/lib/trpc/provider";

/**
 * Where the page's updates come from, in words anyone can read: live over the WebSocket,
 * reconnecting (with backoff), polling, or unavailable with a manual refresh.
 */
export function LiveIndicator() {
  const connection = useConnection();
  const monitor = useConnectionMonitor();
  const { status, attempt } = connection;
  return (
    <div className="flex items-center gap-2 text-sm" role="status" aria-live="polite" data-testid="connection" data-connection={status}>
      {status === "live" ? (
        <span className="inline-flex items-center gap-1 font-medium text-ok">
          Live <span aria-hidden="true">●</span>
        </span>
      ) : status === "connecting" ? (
        <span className="text-slate-500">Connecting…</span>
      ) : status === "reconnecting" ? (
        <span className="text-warn">Reconnecting…{attempt > 1 ? ` (attempt ${attempt})` : ""}</span>
      ) : status === "polling" ? (
        <span className="text-warn" title="The WebSocket is unavailable; updates arrive every few seconds">Polling</span>
      ) : (
        <>
          <span className="text-bad">Real-time updates unavailable</span>
          <button type="button" className="btn-quiet" onClick={() => monitor.refresh()}>
            Refresh
          </button>
        </>
      )}
    </div>
  );
}
