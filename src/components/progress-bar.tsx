/** A labelled progress bar with its value exposed to assistive technology. */
export function ProgressBar({ value, label }: { value: number; label: string }) {
  return (
    <div
      className="h-2 overflow-hidden rounded-full bg-slate-200"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(value)}
    >
      <div className="h-full rounded-full bg-accent transition-[width] duration-300 ease-out" style={{ width: `${value}%` }} />
    </div>
  );
}
