import type { RunState } from "@pulse/client";

type Entry = RunState["timeline"][number];

/** A timeline row: one event, or a stretch of streamed output told as one. */
export type TimelineRow = Entry & { output?: { chunks: number; characters: number } };

/**
 * The run's timeline as the page lists it: consecutive output chunks are one row ("Output:
 * 12 chunks, 340 characters") at the time of the first, so the steps and progress between
 * them are not lost among "Output: 23 characters" rows.
 */
export function timelineRows(timeline: readonly Entry[]): TimelineRow[] {
  const rows: TimelineRow[] = [];
  for (const entry of timeline) {
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
