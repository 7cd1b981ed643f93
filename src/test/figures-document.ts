import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

/** What a long suite run leaves per test file in its figures folder. */
export interface FiguresRun {
  file: string;
  long: boolean;
  finishedAt: string;
}

const BEGIN = "<!-- figures:begin -->";
const END = "<!-- figures:end -->";

/**
 * The figures a long run (`command`) wrote into `dir`, one file per test file; exits with a
 * clear line when there are none or some came from a short run, so a document never shows
 * short counts as the published figures.
 */
export async function readLongRunFigures<T extends FiguresRun>(dir: string, command: string): Promise<T[]> {
  const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith(".json")).sort();
  if (files.length === 0) fail(`no figures in ${dir}: run \`${command}\``);
  const runs = await Promise.all(files.map(async (f) => JSON.parse(await readFile(path.join(dir, f), "utf8")) as T));
  const short = runs.filter((r) => !r.long).map((r) => r.file);
  if (short.length > 0) fail(`not the long run: ${short.join(", ")} ran with short counts; run \`${command}\``);
  return runs;
}

/** Replaces what stands between the document's figures markers with `table`. */
export async function writeFiguresSection(doc: string, table: string): Promise<void> {
  const text = await readFile(doc, "utf8");
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) fail(`${path.basename(doc)} has no ${BEGIN} … ${END} section`);
  await writeFile(doc, `${text.slice(0, begin + BEGIN.length)}\n${table}\n${text.slice(end)}`);
}

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}
