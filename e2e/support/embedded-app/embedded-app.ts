import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { build } from "esbuild";

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Product</title></head>
<body><h1>Your report</h1>
<p><span id="role"></span>: <strong id="status" data-testid="status">loading</strong> (<span id="progress">0</span>%)</p>
<script type="module" src="/page.js"></script></body></html>`;

/**
 * A product's web app on a second loopback origin: its page (bundled once with esbuild) and
 * its own token route, which hands the page the token the product's backend minted.
 */
export class EmbeddedApp {
  private constructor(
    private readonly server: http.Server,
    readonly bundleBytes: number,
  ) {}

  static async start(token: () => Promise<string> | string): Promise<EmbeddedApp> {
    const bundled = await build({
      entryPoints: [path.join(import.meta.dirname, "page.ts")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify: true,
      logLevel: "silent",
    });
    const script = bundled.outputFiles[0]!.contents;
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
    return new EmbeddedApp(server, script.byteLength);
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
