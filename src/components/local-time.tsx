"use client";

import { formatTime } from "@/lib/format";
import { useHydrated } from "@/lib/use-now";

/**
 * A time of day in the reader's own zone and locale. The server knows neither, so it
 * renders the time in UTC and the browser's first render repeats that; the local time
 * follows at once after hydration, and React never sees two texts disagree (#418).
 */
export function LocalTime({ iso, className }: { iso: string; className?: string }) {
  const hydrated = useHydrated();
  return (
    <time dateTime={iso} className={className}>
      {formatTime(iso, hydrated ? undefined : "UTC")}
    </time>
  );
}

/** The same as text, for a line built of strings (log lines). */
export function useTimeFormat(): (iso: string) => string {
  const hydrated = useHydrated();
  return (iso) => formatTime(iso, hydrated ? undefined : "UTC");
}
