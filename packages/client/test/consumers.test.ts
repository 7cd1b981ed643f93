import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The package as an adopter gets it: `npm pack`ed (the `dist/` that `npm test` built first;
 * `--ignore-scripts`, as its `prepack` rebuild would delete `dist/` under other tests), unpacked into the
 * node_modules of small consumer projects next to its peer dependencies, and type-checked by
 * `tsc` under each module resolution an app may use, with the strictest options, without
 * `skipLibCheck` (so the shipped declarations are checked too; errors inside tRPC's own are not ours).
 */

const run = promisify(execFile);
const PACKAGE_DIR = path.resolve(import.meta.dirname, "..");
const REPO_ROOT = path.resolve(PACKAGE_DIR, "../..");
const TSC = path.join(REPO_ROOT, "node_modules/typescript/bin/tsc");
/** What the consumer installs next to the package: its peers, and React's types. */
const PEERS = ["@trpc/client", "@trpc/server", "react", "@types/react", "csstype"];
/** Modules the shipped declarations may name: the package's own files and its peers. */
const ALLOWED_IMPORTS =
  /^(\.{1,2}\/|@trpc\/client$|@trpc\/server(\/observable|\/unstable-core-do-not-import)?$|react(\/jsx-runtime)?$)/;
/** Server code and the server's dependencies: none may reach a consumer's program. */
const SERVER_MODULES = /bullmq|ioredis|prisma|[/\\]pg[/\\]|pino|[/\\]src[/\\]server[/\\]|@node-rs|next[/\\]dist/;

let workDir = "";
let packed = "";

const CONSUMER = `
import { createPulseClient, type PulseRouter, type RunView } from "@pulse/client";
import { PulseProvider, usePulseAgents, usePulseContext, usePulseRun } from "@pulse/client/react";
import type { inferRouterOutputs } from "@trpc/server";
import { createElement } from "react";

const client = createPulseClient({ url: "https://pulse.example.com", getToken: async () => "token" });

export async function status(runId: string): Promise<RunView["status"]> {
  const run: inferRouterOutputs<PulseRouter>["agent"]["get"] = await client.trpc.agent.get.query({ runId });
  return run.status;
}

export const subscription = client.trpc.agent.onStatus.subscribe(
  { runId: "run_1" },
  {
    onData(event) {
      const id: string = event.id;
      if (event.data.type === "agent:progress") console.log(id, event.data.progress.toFixed(0));
    },
  },
);

export function RunStatus({ runId }: { runId: string }) {
  const { run, connection } = usePulseRun(runId);
  const { byRole } = usePulseAgents();
  const { context } = usePulseContext();
  return createElement("span", null, run?.status ?? connection.status, Object.keys(byRole).length, context?.status);
}

export const app = createElement(PulseProvider, { client, children: createElement(RunStatus, { runId: "run_1" }) });

// @ts-expect-error a run is asked for by its id, a string
void client.trpc.agent.get.query({ runId: 42 });
`;

const CONFIGS: Record<string, object> = {
  bundler: { module: "ESNext", moduleResolution: "Bundler" },
  nodenext: { module: "NodeNext", moduleResolution: "NodeNext" },
  "exact-optional": { module: "NodeNext", moduleResolution: "NodeNext", exactOptionalPropertyTypes: true },
};

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), "pulse-client-consumers-"));
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", workDir], {
    cwd: PACKAGE_DIR,
  });
  const { filename } = (JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string }[])[0]!;
  packed = path.join(workDir, "package");
  await run("tar", ["-xzf", path.join(workDir, filename), "-C", workDir]);
}, 180_000);
afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** A consumer project: package.json, tsconfig, one source file, and node_modules with the package and its peers. */
async function consumer(name: string, compilerOptions: object): Promise<string> {
  const dir = path.join(workDir, name);
  await mkdir(path.join(dir, "node_modules/@pulse"), { recursive: true });
  await mkdir(path.join(dir, "node_modules/@trpc"), { recursive: true });
  await mkdir(path.join(dir, "node_modules/@types"), { recursive: true });
  // A copy, as npm installs it: a symlink would resolve its imports from where it points.
  await cp(packed, path.join(dir, "node_modules/@pulse/client"), { recursive: true });
  for (const peer of PEERS)
    await symlink(path.join(REPO_ROOT, "node_modules", peer), path.join(dir, "node_modules", peer));
  await writeFile(path.join(dir, "package.json"), JSON.stringify({ name, type: "module", private: true }));
  const options = {
    target: "ES2022",
    lib: ["dom", "dom.iterable", "ESNext"],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: [],
    ...compilerOptions,
  };
  await writeFile(path.join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: options, files: ["app.ts"] }));
  await writeFile(path.join(dir, "app.ts"), CONSUMER);
  return dir;
}

async function typeCheck(dir: string): Promise<{ errors: string; files: string[] }> {
  const result = await run(process.execPath, [TSC, "-p", dir, "--listFiles"], { cwd: dir }).catch(
    (error: { stdout: string }) => ({ stdout: error.stdout }),
  );
  const lines = result.stdout.split("\n").filter(Boolean);
  // tRPC's own declarations fail the lib check without @types/ws (its ws adapter): not ours to judge.
  const ours = (line: string) => /error TS\d+/.test(line) && !/node_modules[/\\]@trpc[/\\]/.test(line);
  return {
    errors: lines.filter(ours).join("\n"),
    files: lines.filter((l) => !/error TS/.test(l)),
  };
}

describe("@pulse/client in a consumer's project", () => {
  for (const [name, options] of Object.entries(CONFIGS)) {
    it(`type-checks with ${name} (${JSON.stringify(options)}) and loads no server module`, async () => {
      const { errors, files } = await typeCheck(await consumer(name, options));
      expect(errors).toBe("");
      expect(files.some((f) => f.includes("node_modules/@pulse/client/dist/router.d.ts"))).toBe(true);
      expect(files.filter((f) => SERVER_MODULES.test(f))).toEqual([]);
    });
  }

  it("ships declarations that import only the package's own files and its peers", async () => {
    const declarations = (await readdir(path.join(packed, "dist"), { recursive: true })).filter((f) =>
      f.endsWith(".d.ts"),
    );
    expect(declarations).toContain("router.d.ts");
    const named: string[] = [];
    for (const file of declarations) {
      const text = await readFile(path.join(packed, "dist", file), "utf8");
      for (const match of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) named.push(match[1]!);
    }
    expect(named.filter((specifier) => !ALLOWED_IMPORTS.test(specifier))).toEqual([]);
    expect(named.filter((specifier) => SERVER_MODULES.test(specifier))).toEqual([]);
  });
});
