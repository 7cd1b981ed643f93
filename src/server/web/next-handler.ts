import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import next from "next";
import type { WebHandler } from "../http/http-routes";
import type { Logger } from "../logger";

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * Builds the dashboard when there is no build yet or its sources changed since the last
 * one, so `npm start` on a fresh clone needs no separate build step.
 */
export async function ensureWebBuild(logger: Logger): Promise<void> {
  const marker = path.join(projectRoot, ".next", "pulse-source-hash");
  const [current, built] = await Promise.all([webSourceHash(projectRoot), readFile(marker, "utf8").catch(() => null)]);
  if ((await hasWebBuild(projectRoot)) && built === current) return;
  logger.info("building the dashboard (next build); this happens once per change");
  const nextBin = path.join(projectRoot, "node_modules", "next", "dist", "bin", "next");
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [nextBin, "build"], {
      cwd: projectRoot,
      stdio: "inherit",
      env: { ...process.env, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1" },
    });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`next build exited with code ${code}`))));
  });
  await writeFile(marker, current);
}

export class WebBuildMissingError extends Error {
  constructor() {
    super(
      "NODE_ENV=production serves a dashboard built beforehand: run `npm run build` first (or set PULSE_WEB=false).",
    );
    this.name = "WebBuildMissingError";
  }
}

/**
 * How the dashboard is served: Next's dev server (`npm run dev`), a build made beforehand (a
 * production deployment, which must not spend its start-up building), or a build made at
 * start when the sources changed (a local `npm start`).
 */
export type WebMode = "dev" | "prebuilt" | "build-if-changed";

/**
 * Next.js's handlers for the dashboard, prepared in this process (a custom server), so the
 * pages, tRPC and the WebSocket share one port.
 *
 * @see https://nextjs.org/docs/app/guides/custom-server
 */
export async function createWebHandler(options: {
  mode: WebMode;
  hostname: string;
  port: number;
  logger: Logger;
  /** The Next.js project (default: this one). */
  root?: string;
}): Promise<WebHandler> {
  const root = options.root ?? projectRoot;
  if (options.mode === "build-if-changed") await ensureWebBuild(options.logger);
  if (options.mode === "prebuilt" && !(await hasWebBuild(root))) throw new WebBuildMissingError();
  const dev = options.mode === "dev";
  const app = next({ dev, dir: root, hostname: options.hostname, port: options.port });
  await app.prepare();
  const handle = app.getRequestHandler();
  const upgrade = dev ? app.getUpgradeHandler() : undefined;
  return {
    dev,
    handle: (req, res) => handle(req, res),
    ...(upgrade ? { upgrade: (req, socket, head) => upgrade(req, socket, head) } : {}),
  };
}

async function hasWebBuild(root: string): Promise<boolean> {
  return readFile(path.join(root, ".next", "BUILD_ID"), "utf8").then(
    () => true,
    () => false,
  );
}

/** Folders of `src/` no page imports. */
const UNBUNDLED_DIRS = new Set(["src/test"]);

/**
 * A fingerprint of the sources `next build` bundles, to rebuild when any of them changed:
 * all of `src/` but its tests, since pages import server modules too (their
 * data, the event schema), and a page built from an older copy of those would be stale; and
 * the built workspaces (`@pulse/client`'s `dist/`), which pages import as an app would.
 */
async function webSourceHash(root: string): Promise<string> {
  const hash = createHash("sha256");
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!UNBUNDLED_DIRS.has(path.relative(root, full))) await walk(full);
      } else if (!/\.test\.tsx?$/.test(entry.name)) {
        hash.update(`${path.relative(root, full)}\n`);
        hash.update(await readFile(full));
      }
    }
  };
  await walk(path.join(root, "src"));
  await walk(path.join(root, "packages/client/dist"));
  for (const file of ["next.config.mjs", "package-lock.json", "tsconfig.json"]) {
    hash.update(await readFile(path.join(root, file)).catch(() => Buffer.alloc(0)));
  }
  return hash.digest("hex");
}
