import { readFile } from "node:fs/promises";
import path from "node:path";

/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, as `npm run bench -- --profile` writes):
 * the functions with the most self time, and self time per package or source folder, so
 * where a process spends its time can be read without a browser.
 *
 * Usage: tsx bench/profile-summary.ts <file.cpuprofile> [top=30]
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<package> (scoped too), src/<folder>, node:internal, or V8's own entries. */
function owner(url: string, functionName: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  const source = /\/src\/(.+)\/[^/]+$/.exec(url);
  if (source) return `src/${source[1]}`;
  if (url.startsWith("node:")) return "node:internal";
  return path.basename(url);
}

async function main(): Promise<void> {
  const [file, topArg] = process.argv.slice(2);
  if (!file) throw new Error("usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]");
  const top = Number(topArg ?? 30);
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs.entries()]
    .filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)")
    .reduce((a, [, us]) => a + us, 0);
  const busy = total - idle;

  const functions = new Map<string, number>();
  const owners = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === "(idle)") continue;
    const where = frame.url
      ? `${frame.url.replace(/^file:\/\/.*?\/(node_modules|src)\//, "$1/")}:${frame.lineNumber + 1}`
      : "";
    const key = `${frame.functionName || "(anonymous)"} ${where}`.trim();
    functions.set(key, (functions.get(key) ?? 0) + us);
    const group = owner(frame.url, frame.functionName);
    owners.set(group, (owners.get(group) ?? 0) + us);
  }
  // Inclusive time: a node's own samples and everything called under it (recursion counted once per path).
  const inclusive = new Map<number, number>();
  const visit = (id: number): number => {
    const node = byId.get(id)!;
    let sum = selfUs.get(id) ?? 0;
    for (const child of node.children ?? []) sum += visit(child);
    inclusive.set(id, sum);
    return sum;
  };
  visit(profile.nodes[0]!.id);
  const inclusiveByFunction = new Map<string, number>();
  for (const [id, us] of inclusive) {
    const frame = byId.get(id)!.callFrame;
    if (!frame.url.includes("/src/") && !frame.url.includes("node_modules/")) continue;
    const key = `${frame.functionName || "(anonymous)"} ${frame.url.replace(/^file:\/\/.*?\/(node_modules|src)\//, "$1/")}:${frame.lineNumber + 1}`;
    inclusiveByFunction.set(key, (inclusiveByFunction.get(key) ?? 0) + us);
  }

  const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)}%`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  console.log(
    `${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percentages are of busy time)\n`,
  );
  console.log("self time by package / folder:");
  for (const [name, us] of [...owners.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20))
    console.log(`  ${pct(us)} ${ms(us)}  ${name}`);
  console.log(`\ntop ${top} functions by self time:`);
  for (const [name, us] of [...functions.entries()].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`  ${pct(us)} ${ms(us)}  ${name}`);
  console.log(`\ntop ${top} functions (of the project and its packages) by inclusive time:`);
  for (const [name, us] of [...inclusiveByFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`  ${pct(us)} ${ms(us)}  ${name}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
