const LOOK: Record<string, { symbol: string; tone: string }> = {
  idle: { symbol: "○", tone: "border-slate-300 text-slate-600" },
  queued: { symbol: "◔", tone: "border-warn text-warn" },
  retrying: { symbol: "↻", tone: "border-warn text-warn" },
  active: { symbol: "◑", tone: "border-accent text-accent" },
  completed: { symbol: "✓", tone: "border-ok text-ok" },
  failed: { symbol: "✕", tone: "border-bad text-bad" },
  cancelled: { symbol: "⊘", tone: "border-slate-400 text-slate-600" },
  interrupted: { symbol: "◌", tone: "border-slate-400 text-slate-600" },
};

/** A run's or a step's status in words and a symbol, never by colour alone. */
export function StatusBadge({ status, label }: { status: string; label?: string }) {
  const look = LOOK[status] ?? LOOK.idle!;
  return (
    <span
      className={`inline-flex items-center gap-1 rounded-full border px-2 py-0.5 text-xs font-medium ${look.tone}`}
      data-status={status}
    >
      <span aria-hidden="true">{look.symbol}</span>
      {label ?? status}
    </span>
  );
}
