const SYMBOL: Record<string, string> = {
  idle: "○",
  queued: "◔",
  active: "◑",
  completed: "✓",
  failed: "✕",
  cancelled: "⊘",
  live: "●",
  connecting: "…",
  reconnecting: "↻",
  offline: "!",
};

/** Status in words and a symbol, never by colour alone. */
export function StatusBadge({ status, label }: { status: string; label?: string }) {
  return (
    <span className="badge" data-status={status} data-testid={`status-${status}`}>
      <span aria-hidden="true">{SYMBOL[status] ?? "•"}</span>
      {label ?? status}
    </span>
  );
}
