import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BenchResult } from "./bench-result";
import { repeatedTables, summariseRepetitions, type RepeatedSummary } from "./repetitions";
import { benchmarkMarkdown, latencyChart, summarise } from "./report";

/**
 * `npm run bench:docs -- docs/bench/<date>-<commit>.json [--with-persistence=<json>]`:
 * docs/BENCHMARK.md, the chart and the generated part of the README's Benchmarks section,
 * from committed JSON only, so every cited figure can be checked against the run it came
 * from. The second JSON, of a run with `--socket-io-publish=emitter-postgres`, adds the
 * like-for-like section: Socket.IO's publisher writing steps and logs to PostgreSQL before
 * it emits, as Pulse does. Nothing here is typed by hand; `npm run bench` calls it after a
 * full run.
 */

export const README_START = "<!-- bench:generated:start (npm run bench:docs; do not edit by hand) -->";
export const README_END = "<!-- bench:generated:end -->";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/** Which run a section's figures come from: its date, commit, length, repetitions, `what` it compared, and its JSON. */
function runLine(result: BenchResult, repeated: RepeatedSummary, what: string, jsonPath: string): string {
  return `Run of ${result.startedAt.slice(0, 10)} (commit ${result.revision ?? "unknown"}, ${Math.round(result.durationS)} s,
${repeated.repetitions} repetitions, ${what}); JSON: [${jsonPath}](${jsonPath}).`;
}

/**
 * The headline section: the repeated figures and targets, and the JSON they came from. They
 * are summarised again from the run's raw steps rather than taken from the summary it
 * stored, so every committed run is read by the same (current) statistics.
 */
export function repeatedSection(result: BenchResult, jsonPath: string): string {
  const repeated = summariseRepetitions(result);
  return `${runLine(result, repeated, `Socket.IO fed by \`${result.socketIoPublish}\``, jsonPath)} Each figure is the median over the repetitions with its spread
(min–max) in brackets; a target is met only at the worse end of the spread, which its column
prints rounded away from the target (so a figure just short of it never reads as reaching it).

${repeatedTables(repeated, result.designs, true)}`;
}

/**
 * The like-for-like section, from a run whose Socket.IO publisher persisted as Pulse does:
 * the load scenarios' tables and the targets that run could judge (it measures nothing else).
 */
export function persistenceSection(result: BenchResult, jsonPath: string): string {
  if (result.socketIoPublish !== "emitter-postgres")
    throw new Error(
      `--with-persistence: ${jsonPath} fed Socket.IO by "${result.socketIoPublish}", not "emitter-postgres"`,
    );
  const repeated = summariseRepetitions(result);
  const judged = { ...repeated, targets: repeated.targets.filter((t) => t.spread !== null) };
  return `${runLine(result, repeated, result.designs.join(" and "), jsonPath)} Socket.IO's
publisher writes each step and log line to the same PostgreSQL before it emits (\`--socket-io-publish=emitter-postgres\`),
as Pulse's bus does, so both carry the cost of keeping what they deliver.

${repeatedTables(judged, result.designs, true)}`;
}

/** Replaces what lies between the README's markers; the markers must be there. */
export function replaceGenerated(readme: string, generated: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md has no "${README_START}" … "${README_END}" block`);
  return `${readme.slice(0, start + README_START.length)}\n\n${generated}\n\n${readme.slice(end)}`;
}

const LIKE_FOR_LIKE = "Like for like: Socket.IO with persistence";
/** The heading's anchor as GitHub makes it (lower case, punctuation dropped, spaces to hyphens). */
const LIKE_FOR_LIKE_ANCHOR = "like-for-like-socketio-with-persistence";

/**
 * Writes the docs from the JSON at `json` (and the like-for-like run at `persistenceJson`)
 * under `root`; resolves to the files written (relative to `root`).
 */
export async function writeBenchDocs(json: string, root = REPO_ROOT, persistenceJson?: string): Promise<string[]> {
  const read = async (file: string) => JSON.parse(await readFile(path.resolve(root, file), "utf8")) as BenchResult;
  const fromDocs = (file: string) => path.relative(path.join(root, "docs"), path.resolve(root, file));
  const fromRoot = (file: string) => path.relative(root, path.resolve(root, file));
  // Like the repeated figures, the single-pass summary is made again from the raw steps, by
  // the current method, rather than taken from what the run stored.
  const stored = await read(json);
  const result: BenchResult = { ...stored, summary: summarise(stored) };
  const persisted = persistenceJson ? { file: persistenceJson, result: await read(persistenceJson) } : null;
  const likeForLike = persisted
    ? `\n\n## ${LIKE_FOR_LIKE}\n\n${persistenceSection(persisted.result, fromDocs(persisted.file))}`
    : "";
  const markdown = benchmarkMarkdown(result)
    .replace("`.data/bench/latest.json` after a run.", `[${fromDocs(json)}](${fromDocs(json)}).`)
    .replace(
      "\n## What is compared",
      `\n## Figures over the repetitions\n\n${repeatedSection(result, fromDocs(json))}${likeForLike}\n\n## What is compared`,
    );
  await writeFile(path.join(root, "docs/BENCHMARK.md"), markdown);
  await writeFile(path.join(root, "docs/benchmark-latency.svg"), latencyChart(result));
  const readmePath = path.join(root, "README.md");
  const readme = await readFile(readmePath, "utf8");
  const pointer = persisted
    ? `\n\nLike for like, with Socket.IO's publisher writing steps and logs to PostgreSQL as Pulse does: ` +
      `[docs/BENCHMARK.md](docs/BENCHMARK.md#${LIKE_FOR_LIKE_ANCHOR}) (JSON: [${fromRoot(persisted.file)}](${fromRoot(persisted.file)})).`
    : "";
  await writeFile(readmePath, replaceGenerated(readme, `${repeatedSection(result, fromRoot(json))}${pointer}`));
  return ["docs/BENCHMARK.md", "docs/benchmark-latency.svg", "README.md"];
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const [json, ...flags] = process.argv.slice(2);
  const persistence = flags.find((f) => f.startsWith("--with-persistence="))?.slice("--with-persistence=".length);
  if (!json || flags.length > (persistence ? 1 : 0)) {
    console.error("usage: npm run bench:docs -- docs/bench/<date>-<commit>.json [--with-persistence=<json>]");
    process.exit(2);
  }
  writeBenchDocs(json, REPO_ROOT, persistence).then(
    (files) => console.log(`bench:docs: ${files.join(", ")} from ${json}`),
    (error: unknown) => {
      console.error(`bench:docs: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
