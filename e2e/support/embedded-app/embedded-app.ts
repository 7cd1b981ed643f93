import { execFile } from "node:child_process";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";

const run = promisify(execFile);
const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Product</title></head>
<body><h1>Your report</h1><div id="root"></div>
<script type="module" src="/page.js"></script></body></html>`;

/**
 * A product's web app on a second loopback origin: `@pulse/client` packed from this repository
 * (`npm pack`, as it would be published) and installed with `npm install` into a scratch app,
 * its page (`page.tsx`) bundled with esbuild, and its own token route, which hands the page
 * the token the product's backend minted. The app already has React and tRPC, the package's
 * peers: the bundle takes them from the repository's node_modules.
 */
export class EmbeddedApp {
  private constructor(
    private readonly server: http.Server,
    private readonly dir: string,
    readonly bundleBytes: number,
    /** How long `npm install` of the tarball, then the page's bundle, took (ms). */
    readonly installAndBundleMs: number,
  ) {}

  static async start(token: () => Promise<string> | string): Promise<EmbeddedApp> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "pulse-embedded-app-"));
    const tarball = await packClient(dir);
    const installStartedAt = performance.now();
    await writeFile(path.join(dir, "package.json"), JSON.stringify({ name: "product", private: true, type: "module" }));
    // The peers are the app's own already (see above): install the package alone, from the tarball.
    await run("npm", ["install", tarball, "--offline", "--legacy-peer-deps", "--no-audit", "--no-fund"], { cwd: dir });
    await copyFile(path.join(import.meta.dirname, "page.tsx"), path.join(dir, "page.tsx"));
    const script = await bundle(dir);
    const installAndBundleMs = performance.now() - installStartedAt;
    const server = http.createServer((req, res) => {
      if (req.url === "/page.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(script);
      if (req.url === "/token") {
        return void Promise.resolve(token()).then((t) =>
          res.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" }).end(t),
        );
      }
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new EmbeddedApp(server, dir, script.byteLength, installAndBundleMs);
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * `npm pack` of the workspace: the tarball an adopter would install. Of the `dist/` that
 * `npm test` (and `npm install`) built: its `prepack` rebuild would delete `dist/` under the
 * tests running beside this one.
 */
async function packClient(dir: string): Promise<string> {
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], {
    cwd: path.join(REPO_ROOT, "packages/client"),
  });
  const { filename } = (JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string }[])[0]!;
  return path.join(dir, filename);
}

async function bundle(dir: string): Promise<Uint8Array> {
  const bundled = await build({
    entryPoints: [path.join(dir, "page.tsx")],
    absWorkingDir: dir,
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    define: { "process.env.NODE_ENV": '"production"' },
    nodePaths: [path.join(REPO_ROOT, "node_modules")],
    minify: true,
    logLevel: "silent",
  });
  return bundled.outputFiles[0]!.contents;
}
