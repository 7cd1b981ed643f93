import path from "node:path";
import { readLongRunFigures, writeFiguresSection, type FiguresRun } from "../figures-document";
import { FIGURES_DIR } from "./attack-log";

/**
 * `npm run test:security`, after the long run passed: copies the attempts and failures each
 * attack saw into the table of docs/SECURITY.md, so the document shows what was last run.
 */
const doc = path.resolve(import.meta.dirname, "../../../docs/SECURITY.md");

interface Figures extends FiguresRun {
  attacks: { attack: string; expected: string; attempts: number; failures: number; observed?: string }[];
}

const runs = await readLongRunFigures<Figures>(FIGURES_DIR, "npm run test:security");
const escape = (text: string) => text.replace(/\|/g, "\\|");
const rows = runs.flatMap((run) =>
  run.attacks.map(
    (a) =>
      `| ${escape(a.attack)} | ${escape(a.expected)}${a.observed ? ` (seen: ${escape(a.observed)})` : ""} | ${a.attempts.toLocaleString("en-US")} | ${a.failures} | \`${run.file}\` |`,
  ),
);
const last =
  runs
    .map((r) => r.finishedAt)
    .sort()
    .at(-1) ?? "never";
const table = [
  `Last run: ${last} (\`npm run test:security\`, ${runs.reduce((n, r) => n + r.attacks.reduce((m, a) => m + a.attempts, 0), 0).toLocaleString("en-US")} attempts in all).`,
  "",
  "| Attack | Expected behaviour | Attempts | Failures | Test file |",
  "| --- | --- | ---: | ---: | --- |",
  ...rows,
].join("\n");

await writeFiguresSection(doc, table);
console.log(`docs/SECURITY.md: ${rows.length} attacks from ${runs.length} test files`);
