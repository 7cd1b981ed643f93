"use client";

import { formatDateTime, formatRelative, formatTime } from "@/lib/format";
import { useHydrated, useNow } from "@/lib/use-now";

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

/**
 * How long ago a moment was ("2 min ago"), with its date and time in the reader's zone on
 * hover. The server and the first render print the UTC date and time, as `LocalTime` does.
 */
export function RelativeTime({ iso, className }: { iso: string; className?: string }) {
  const now = useNow();
  return (
    <time
      dateTime={iso}
      className={className}
      title={now === null ? undefined : formatDateTime(iso)}
      data-testid="relative-time"
    >
      {now === null ? formatDateTime(iso, "UTC") : formatRelative(Date.parse(iso), now)}
    </time>
  );
}
