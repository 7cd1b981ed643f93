import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { FIGURES_DIR } from "./attack-log";

/**
 * `npm run test:security`, after the long run passed: copies the attempts and failures each
 * attack saw into the table of docs/SECURITY.md, so the document shows what was last run.
 */
const doc = path.resolve(import.meta.dirname, "../../../docs/SECURITY.md");
const BEGIN = "<!-- figures:begin -->";
const END = "<!-- figures:end -->";

interface Figures {
  file: string;
  long: boolean;
  finishedAt: string;
  attacks: { attack: string; expected: string; attempts: number; failures: number; observed?: string }[];
}

const files = (await readdir(FIGURES_DIR)).filter((f) => f.endsWith(".json")).sort();
const runs: Figures[] = await Promise.all(files.map(async (f) => JSON.parse(await readFile(path.join(FIGURES_DIR, f), "utf8")) as Figures));
const short = runs.filter((r) => !r.long).map((r) => r.file);
if (short.length > 0) {
  console.error(`not the long run: ${short.join(", ")} ran with short counts; run \`npm run test:security\``);
  process.exit(1);
}
const escape = (text: string) => text.replace(/\|/g, "\\|");
const rows = runs.flatMap((run) =>
  run.attacks.map(
    (a) =>
      `| ${escape(a.attack)} | ${escape(a.expected)}${a.observed ? ` (seen: ${escape(a.observed)})` : ""} | ${a.attempts.toLocaleString("en-US")} | ${a.failures} | \`${run.file}\` |`,
  ),
);
const last = runs.map((r) => r.finishedAt).sort().at(-1) ?? "never";
const table = [
  `Last run: ${last} (\`npm run test:security\`, ${runs.reduce((n, r) => n + r.attacks.reduce((m, a) => m + a.attempts, 0), 0).toLocaleString("en-US")} attempts in all).`,
  "",
  "| Attack | Expected behaviour | Attempts | Failures | Test file |",
  "| --- | --- | ---: | ---: | --- |",
  ...rows,
].join("\n");

const text = await readFile(doc, "utf8");
const begin = text.indexOf(BEGIN);
const end = text.indexOf(END);
if (begin < 0 || end < begin) {
  console.error(`docs/SECURITY.md has no ${BEGIN} … ${END} section`);
  process.exit(1);
}
await writeFile(doc, `${text.slice(0, begin + BEGIN.length)}\n${table}\n${text.slice(end)}`);
console.log(`docs/SECURITY.md: ${rows.length} attacks from ${runs.length} test files`);
