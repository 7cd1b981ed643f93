import type { RunState } from "@pulse/client";

type Entry = RunState["timeline"][number];

/** A timeline row: one event, or a stretch of streamed output told as one. */
export type TimelineRow = Entry & { output?: { chunks: number; characters: number } };

/** The events of a run's life: queued, each attempt's start, its end. */
const LIFECYCLE = new Set<Entry["event"]["type"]>([
  "agent:queued",
  "agent:active",
  "agent:completed",
  "agent:failed",
  "agent:cancelled",
]);

/**
 * The run's timeline as the page lists it: consecutive output chunks are one row ("Output:
 * 12 chunks, 340 characters") at the time of the first, so the steps and progress between
 * them are not lost among "Output: 23 characters" rows. `lifecycleOnly` keeps only the
 * run's life (queued, each attempt started, failed, completed, cancelled).
 */
export function timelineRows(timeline: readonly Entry[], { lifecycleOnly = false } = {}): TimelineRow[] {
  const rows: TimelineRow[] = [];
  for (const entry of timeline) {
    if (lifecycleOnly && !LIFECYCLE.has(entry.event.type)) continue;
    const last = rows.at(-1);
    if (entry.event.type !== "agent:output") {
      rows.push(entry);
    } else if (last?.output) {
      last.output = { chunks: last.output.chunks + 1, characters: last.output.characters + entry.event.chunk.length };
    } else {
      rows.push({ ...entry, output: { chunks: 1, characters: entry.event.chunk.length } });
    }
  }
  return rows;
}

/** What an output row says. */
export function describeOutput({ chunks, characters }: { chunks: number; characters: number }): string {
  return chunks === 1 ? `Output: ${characters} characters` : `Output: ${chunks} chunks, ${characters} characters`;
}
