import http from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { answerRequests } from "../ipc";
import { tenantChannel } from "../workload";
import { COMPETITOR_LISTEN, tokenVerifier, type CompetitorConfig } from "./competitor-config";
import { exitSoon, diagnosticRequests, serverStats } from "./server-stats";
import { TenantChannelHub } from "./tenant-channel-hub";

/**
 * Seed 003's design made multi-server: server-sent events on plain node:http, a
 * `connected` event first and a heartbeat every 30 s, fed by Redis pub/sub (one channel
 * per tenant) instead of an in-process event emitter. Each event is framed once and
 * written to every response of its tenant.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html
 */
const HEARTBEAT_MS = 30_000;
const DATA = Buffer.from("data: ");
const END = Buffer.from("\n\n");

let server: http.Server | undefined;
let redis: Redis | undefined;
let hub: TenantChannelHub<http.ServerResponse> | undefined;
let heartbeat: NodeJS.Timeout | undefined;

answerRequests({
  ...diagnosticRequests(),
  async init(config: CompetitorConfig) {
    const verify = tokenVerifier(config);
    redis = new Redis(config.redisUrl);
    const channelHub = new TenantChannelHub<http.ServerResponse>(
      redis,
      (tenantId) => tenantChannel("sse", tenantId),
      (members, message) => {
        const frame = Buffer.concat([DATA, message, END]);
        for (const res of members) res.write(frame);
      },
    );
    hub = channelHub;
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://localhost");
      if (url.pathname !== "/events") {
        res.writeHead(404).end();
        return;
      }
      void verify(url.searchParams.get("token")).then(async (tenantId) => {
        if (!tenantId) {
          res.writeHead(401, { "content-type": "application/json" }).end('{"error":"unauthorized"}');
          return;
        }
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          connection: "keep-alive",
        });
        let closed = false;
        req.once("close", () => {
          closed = true;
          channelHub.remove(tenantId, res);
        });
        await channelHub.add(tenantId, res);
        if (closed) {
          channelHub.remove(tenantId, res);
          return;
        }
        res.write(`event: connected\ndata: {"tenantId":"${tenantId}"}\n\n`);
      });
    });
    await new Promise<void>((resolve) => server!.listen(COMPETITOR_LISTEN, resolve));
    heartbeat = setInterval(() => {
      for (const res of channelHub.all()) res.write(": heartbeat\n\n");
    }, HEARTBEAT_MS);
    return { port: (server.address() as AddressInfo).port };
  },
  stats: (options: { gc?: boolean }) => serverStats(() => hub?.size ?? 0, options),
  async stop() {
    clearInterval(heartbeat);
    for (const res of hub?.all() ?? []) res.destroy();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    redis?.disconnect();
    exitSoon();
  },
});
