import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BenchResult } from "./bench-result";
import { repeatedTables, summariseRepetitions } from "./repetitions";
import { benchmarkMarkdown, latencyChart } from "./report";

/**
 * `npm run bench:docs -- docs/bench/<date>-<commit>.json`: docs/BENCHMARK.md, the chart and
 * the generated part of the README's Benchmarks section, all from one committed JSON, so
 * every cited figure can be checked against the run it came from. Nothing here is typed by
 * hand; `npm run bench` calls it after a full run.
 */

export const README_START = "<!-- bench:generated:start (npm run bench:docs; do not edit by hand) -->";
export const README_END = "<!-- bench:generated:end -->";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/** The headline section: the repeated figures and targets, and the JSON they came from. */
export function repeatedSection(result: BenchResult, jsonPath: string): string {
  const repeated = result.repeated ?? summariseRepetitions(result);
  return `Run of ${result.startedAt.slice(0, 10)} (commit ${result.revision ?? "unknown"}, ${Math.round(result.durationS)} s,
${repeated.repetitions} repetitions, Socket.IO fed by \`${result.socketIoPublish}\`); JSON:
[${jsonPath}](${jsonPath}). Each figure is the median over the repetitions with its spread
(min–max) in brackets; a target is met only at the worse end of the spread.

${repeatedTables(repeated, result.designs, true)}`;
}

/** Replaces what lies between the README's markers; the markers must be there. */
export function replaceGenerated(readme: string, generated: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md has no "${README_START}" … "${README_END}" block`);
  return `${readme.slice(0, start + README_START.length)}\n\n${generated}\n\n${readme.slice(end)}`;
}

/** Writes the docs from the JSON at `json` under `root`; resolves to the files written (relative to `root`). */
export async function writeBenchDocs(json: string, root = REPO_ROOT): Promise<string[]> {
  const result = JSON.parse(await readFile(path.resolve(root, json), "utf8")) as BenchResult;
  const jsonFromDocs = path.relative(path.join(root, "docs"), path.resolve(root, json));
  const jsonFromRoot = path.relative(root, path.resolve(root, json));
  const markdown = benchmarkMarkdown(result)
    .replace("`.data/bench/latest.json` after a run.", `[${jsonFromDocs}](${jsonFromDocs}).`)
    .replace(
      "\n## What is compared",
      `\n## Figures over the repetitions\n\n${repeatedSection(result, jsonFromDocs)}\n\n## What is compared`,
    );
  await writeFile(path.join(root, "docs/BENCHMARK.md"), markdown);
  await writeFile(path.join(root, "docs/benchmark-latency.svg"), latencyChart(result));
  const readmePath = path.join(root, "README.md");
  const readme = await readFile(readmePath, "utf8");
  await writeFile(readmePath, replaceGenerated(readme, repeatedSection(result, jsonFromRoot)));
  return ["docs/BENCHMARK.md", "docs/benchmark-latency.svg", "README.md"];
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const json = process.argv[2];
  if (!json) {
    console.error("usage: npm run bench:docs -- docs/bench/<date>-<commit>.json");
    process.exit(2);
  }
  writeBenchDocs(json).then(
    (files) => console.log(`bench:docs: ${files.join(", ")} from ${json}`),
    (error: unknown) => {
      console.error(`bench:docs: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
