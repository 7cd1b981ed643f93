/**
 * The bar's colour says how the run ended, as its badge does in words beside it: never the
 * running blue once it failed (the danger colour) or was cancelled (neutral). Each fill keeps
 * 3:1 against the track in both themes, as WCAG asks of a graphic that carries meaning.
 */
const TONE: Record<string, string> = {
  failed: "bg-bad",
  cancelled: "bg-slate-500",
  interrupted: "bg-slate-500",
  completed: "bg-ok",
  retrying: "bg-warn",
};

/** A labelled progress bar with its value exposed to assistive technology. */
export function ProgressBar({ value, label, status }: { value: number; label: string; status?: string }) {
  return (
    <div
      className="h-2 overflow-hidden rounded-full bg-slate-200"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(value)}
      data-status={status}
    >
      <div
        className={`h-full rounded-full ${TONE[status ?? ""] ?? "bg-accent"} transition-[width] duration-300 ease-out`}
        style={{ width: `${value}%` }}
      />
    </div>
  );
}
