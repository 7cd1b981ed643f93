import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { README_END, README_START, replaceGenerated, writeBenchDocs } from "./bench-docs";
import { fixtureRepetition, fixtureResult } from "./result-fixtures";

let root: string;
const JSON_PATH = "docs/bench/2026-12-05-abc1234.json";

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "pulse-bench-docs-"));
  await mkdir(path.join(root, "docs/bench"), { recursive: true });
  const runs = [0, 1, 2].map((r) =>
    fixtureRepetition(r, {
      // The last repetition soaks each design at its median maximum.
      pulse: { max: 1_000 + r * 100, p99AtLoads: [10, 20, 30], ...(r === 2 ? { soakPassed: true } : {}) },
      "socket-io": { max: 900, p99AtLoads: [12, 22, 32 + r * 10] },
      "ws-floor": { max: 2_000 },
    }),
  );
  await writeFile(path.join(root, JSON_PATH), JSON.stringify(fixtureResult(runs)));
  await writeFile(
    path.join(root, "README.md"),
    `# Pulse\n\n## Benchmarks\n\nProse.\n\n${README_START}\nold figures\n${README_END}\n\nMore prose.\n`,
  );
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

test("bench:docs writes BENCHMARK.md, the chart and the README's figures from the named JSON alone", async () => {
  expect(await writeBenchDocs(JSON_PATH, root)).toEqual([
    "docs/BENCHMARK.md",
    "docs/benchmark-latency.svg",
    "README.md",
  ]);

  const markdown = await readFile(path.join(root, "docs/BENCHMARK.md"), "utf8");
  expect(markdown).toContain("(bench/2026-12-05-abc1234.json)");
  expect(markdown).toContain("## Figures over the repetitions");
  // Pulse's maxima 5000, 5500, 6000 deliveries/s over three repetitions.
  expect(markdown).toContain("| pulse | 5500 (5000–6000) | 1/1 |");
  const readme = await readFile(path.join(root, "README.md"), "utf8");
  expect(readme).not.toContain("old figures");
  expect(readme).toContain(`(${JSON_PATH})`);
  expect(readme).toContain("More prose.");
  expect(readme).toContain("5500 (5000–6000)");
  const svg = await readFile(path.join(root, "docs/benchmark-latency.svg"), "utf8");
  // One panel for the scenario's three repetitions, with a spread band per design.
  expect(svg.match(/font-weight="600"/g)).toHaveLength(1);
  expect(svg.match(/<polygon /g)).toHaveLength(3);
});

test("the same JSON gives the same docs: nothing depends on when they were generated", async () => {
  await writeBenchDocs(JSON_PATH, root);
  const first = await readFile(path.join(root, "docs/BENCHMARK.md"), "utf8");
  await writeBenchDocs(JSON_PATH, root);
  expect(await readFile(path.join(root, "docs/BENCHMARK.md"), "utf8")).toBe(first);
});

test("with a run whose Socket.IO persisted as Pulse does, the docs gain the like-for-like section and the README a pointer to it", async () => {
  const PERSISTED = "docs/bench/2026-12-05-abc1234-emitter-postgres.json";
  const runs = [0, 1, 2].map((r) =>
    fixtureRepetition(r, {
      pulse: { max: 1_000, p99AtLoads: [10, 20, 30] },
      "socket-io": { max: 400 + r * 100, p99AtLoads: [40, 50, 60] },
    }),
  );
  const persisted = { ...fixtureResult(runs), designs: ["pulse", "socket-io"], socketIoPublish: "emitter-postgres" };
  await writeFile(path.join(root, PERSISTED), JSON.stringify(persisted));
  await writeBenchDocs(JSON_PATH, root, PERSISTED);
  const markdown = await readFile(path.join(root, "docs/BENCHMARK.md"), "utf8");
  const start = markdown.indexOf("## Like for like: Socket.IO with persistence");
  expect(start).toBeGreaterThan(0);
  const section = markdown.slice(start, markdown.indexOf("\n## ", start));
  expect(section).toContain("(bench/2026-12-05-abc1234-emitter-postgres.json)");
  // Socket.IO's maxima 2000, 2500, 3000 deliveries/s; no floor in that run, no idle or storm targets.
  expect(section).toContain("| socket-io | 2500 (2000–3000) |");
  expect(section).not.toContain("ws-floor");
  expect(section).not.toContain("idle connection");
  const readme = await readFile(path.join(root, "README.md"), "utf8");
  expect(readme).toContain(
    `[docs/BENCHMARK.md](docs/BENCHMARK.md#like-for-like-socketio-with-persistence) (JSON: [${PERSISTED}](${PERSISTED}))`,
  );
});

test("a like-for-like JSON whose Socket.IO did not persist is refused", async () => {
  await expect(writeBenchDocs(JSON_PATH, root, JSON_PATH)).rejects.toThrow(/fed Socket.IO by "emitter"/);
});

test("a README without the generated block is refused rather than appended to", () => {
  expect(() => replaceGenerated("# Pulse\n", "figures")).toThrow(/bench:generated:start/);
});
