import path from "node:path";
import { readLongRunFigures, writeFiguresSection, type FiguresRun } from "../figures-document";
import { CHAOS_FIGURES_DIR, type ScenarioFigures } from "./chaos-log";

/**
 * `npm run test:chaos`, after the long run passed: writes what each scenario saw into the
 * table of docs/RELIABILITY.md, so the document shows the figures of the last run.
 */
const doc = path.resolve(import.meta.dirname, "../../../docs/RELIABILITY.md");

interface FiguresFile extends FiguresRun {
  scenarios: ScenarioFigures[];
}

// The multi-process scenarios need DATABASE_URL; without it the table says which are missing.
const runs = await readLongRunFigures<FiguresFile>(CHAOS_FIGURES_DIR, "npm run test:chaos");
const scenarios = runs.flatMap((r) => r.scenarios).sort((a, b) => a.number - b.number);
const missing = [1, 2, 3, 4, 5, 6, 7, 8, 9].filter((n) => !scenarios.some((s) => s.number === n));
const number = (n: number) => n.toLocaleString("en-US");
const escape = (text: string) => text.replace(/\|/g, "\\|");
const ms = (value: number | null) =>
  value === null ? "–" : value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${number(value)} ms`;
const rows = scenarios.map(
  (s) =>
    `| ${s.number} | ${escape(s.scenario)} | ${number(s.events)} | ${number(s.clients)} | ${number(s.faults)} (${escape(s.faultKind)}) | ${s.lost} | ${s.duplicated} | ${s.reordered} | ${s.stuckRuns} | ${number(s.resyncs)} | ${ms(s.recoveryMs)} | ${escape(s.observed ?? "")} |`,
);
const last =
  runs
    .map((r) => r.finishedAt)
    .sort()
    .at(-1) ?? "never";
const total = (key: "events" | "clients" | "faults" | "lost" | "duplicated" | "reordered" | "stuckRuns") =>
  scenarios.reduce((n, s) => n + s[key], 0);
const table = [
  `Last run: ${last} (\`npm run test:chaos\`): ${number(total("events"))} events, ${number(total("clients"))} clients, ${number(total("faults"))} faults; ` +
    `${total("lost")} lost, ${total("duplicated")} duplicated, ${total("reordered")} reordered, ${total("stuckRuns")} stuck runs.` +
    (missing.length > 0 ? ` Scenarios not in this run: ${missing.join(", ")} (they need DATABASE_URL).` : ""),
  "",
  "| # | Scenario | Events | Clients | Faults | Lost | Duplicated | Reordered | Stuck runs | Resyncs | Recovery | Observed |",
  "| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ...rows,
].join("\n");

await writeFiguresSection(doc, table);
console.log(`docs/RELIABILITY.md: ${rows.length} scenarios from ${runs.length} test files`);
