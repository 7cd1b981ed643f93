"use client";

import { useConnection, useConnectionMonitor } from "@/lib/trpc/provider";

/**
 * Where the page's updates come from, in words anyone can read: live over the WebSocket,
 * live over server-sent events ("Live (HTTP)", where a proxy refuses WebSockets),
 * connecting (never connected yet), reconnecting, polling, or unavailable with a manual
 * refresh. A page that never connected says it cannot reach the server once the transports
 * gave up, not that it is reconnecting. No attempt count: the WebSocket client's retries,
 * the stream's and the probe's are not one sequence a reader could follow.
 */
export function LiveIndicator() {
  const connection = useConnection();
  const monitor = useConnectionMonitor();
  const { status, everConnected } = connection;
  return (
    <div
      className="flex items-center gap-2 text-sm"
      role="status"
      aria-live="polite"
      data-testid="connection"
      data-connection={status}
    >
      {status === "live" ? (
        <span className="inline-flex items-center gap-1 font-medium text-ok">
          Live <span aria-hidden="true">●</span>
        </span>
      ) : status === "live-http" ? (
        <span
          className="inline-flex items-center gap-1 font-medium text-ok"
          title="WebSockets are blocked on this network; updates stream over HTTP"
        >
          Live (HTTP) <span aria-hidden="true">●</span>
        </span>
      ) : status === "connecting" ? (
        <span className="text-slate-500">Connecting…</span>
      ) : status === "reconnecting" ? (
        <span className="text-warn">Reconnecting…</span>
      ) : status === "polling" ? (
        <span className="text-warn" title="Streaming is blocked on this network; updates arrive every few seconds">
          Polling
        </span>
      ) : (
        <>
          <span className="text-bad">
            {everConnected ? "Real-time updates unavailable" : "Cannot reach the server"}
          </span>
          <button type="button" className="btn-quiet" onClick={() => monitor.refresh()}>
            Refresh
          </button>
        </>
      )}
    </div>
  );
}
