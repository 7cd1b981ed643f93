import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

/**
 * A loopback reverse proxy in front of Pulse that passes HTTP through and can refuse
 * WebSocket upgrades, as a proxy or firewall that blocks WebSockets would: `block()` drops
 * the open sockets and answers new upgrades 503; `holdUpgrades()` leaves new upgrades
 * unanswered instead, as a proxy that does not know WebSockets may; `allow()` lets them
 * through again.
 * `bufferStreams()` also holds every `text/event-stream` response back until it ends, as a
 * buffering proxy (or a virus scanner) does, so server-sent events never reach the page.
 * `delay()` slows a route down and `cutNextUpgradeAfter()` drops a socket soon after it opened.
 * `goDown()` drops every connection and every new request, as a server that went away;
 * `goSilent()` cuts the open ones too but then holds every new request and upgrade unanswered
 * for good, as a balancer in front of a hung server does (or a network that loses the
 * replies); `comeBack()` passes new ones again.
 */
export class UpgradeGate {
  private readonly server: http.Server;
  private readonly tunnels = new Set<net.Socket>();
  private readonly streams = new Set<http.ServerResponse>();
  /** Connections and upgrades `goSilent()` and `holdUpgrades()` took and never answer. */
  private readonly held = new Set<Duplex>();
  private blocked = false;
  private holdingUpgrades = false;
  private buffering = false;
  private down = false;
  private silent = false;
  private readonly delays: { path: string; ms: number }[] = [];
  private cutNextUpgradeAfterMs: number | undefined;
  private readonly agent = new http.Agent({ keepAlive: true });
  refusedUpgrades = 0;
  /** Event-stream responses passed through, and held back by `bufferStreams()`. */
  passedStreams = 0;
  bufferedStreams = 0;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = http.createServer((req, res) => {
      if (this.down) return void req.socket.destroy();
      if (this.silent) return void this.held.add(req.socket);
      const delay = this.delays.find((d) => req.url?.includes(d.path));
      if (delay) setTimeout(() => this.forward(req, res), delay.ms);
      else this.forward(req, res);
    });
    this.server.on("upgrade", (req, socket, head) => {
      if (this.down) return void socket.destroy();
      if (this.silent || this.holdingUpgrades) return void this.held.add(socket);
      if (this.blocked) {
        this.refusedUpgrades += 1;
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const cutAfterMs = this.cutNextUpgradeAfterMs;
      this.cutNextUpgradeAfterMs = undefined;
      const upstream = net.connect(target.port, target.host, () => {
        const headers = Object.entries(req.headers).flatMap(([k, v]) =>
          Array.isArray(v) ? v.map((x) => `${k}: ${x}`) : [`${k}: ${v}`],
        );
        upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers.join("\r\n")}\r\n\r\n`);
        if (head.length) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
        if (cutAfterMs !== undefined) setTimeout(close, cutAfterMs);
      });
      const close = () => {
        upstream.destroy();
        socket.destroy();
        this.tunnels.delete(upstream);
      };
      upstream.on("error", close).on("close", close);
      socket.on("error", close).on("close", close);
      this.tunnels.add(upstream);
    });
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { host, port } = this.target;
    const upstream = http.request(
      { host, port, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (response) => {
        if (!String(response.headers["content-type"]).startsWith("text/event-stream")) {
          res.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(res);
          return;
        }
        this.streams.add(res);
        res.on("close", () => {
          this.streams.delete(res);
          response.destroy();
        });
        if (this.buffering) return this.buffer(response, res);
        this.passedStreams += 1;
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      },
    );
    upstream.on("error", () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    req.pipe(upstream);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  block(): void {
    this.blocked = true;
    for (const tunnel of this.tunnels) tunnel.destroy();
  }

  /** From now on, requests whose URL contains `path` reach the server `ms` late (a slow route). */
  delay(path: string, ms: number): void {
    this.delays.push({ path, ms });
  }

  /** The next WebSocket that passes is cut `ms` after it reached the server (a connection that drops). */
  cutNextUpgradeAfter(ms: number): void {
    this.cutNextUpgradeAfterMs = ms;
  }

  /** New upgrades are taken and never answered (the ones held stay held after `allow()`). */
  holdUpgrades(): void {
    this.holdingUpgrades = true;
  }

  allow(): void {
    this.blocked = false;
    this.holdingUpgrades = false;
  }

  /** Nothing reaches the server from now on: open sockets, streams and connections are cut, new ones dropped. */
  goDown(): void {
    this.down = true;
    for (const tunnel of this.tunnels) tunnel.destroy();
    for (const stream of this.streams) stream.destroy();
    this.server.closeAllConnections();
  }

  /** Open sockets, streams and connections are cut; from now on every request and upgrade is held unanswered. */
  goSilent(): void {
    this.goDown();
    this.down = false;
    this.silent = true;
  }

  /** New requests pass again (ones held by `goSilent()` stay held). */
  comeBack(): void {
    this.down = false;
    this.silent = false;
  }

  /** From now on, event streams reach the page only when they end; the open ones are cut. */
  bufferStreams(): void {
    this.buffering = true;
    for (const stream of this.streams) stream.destroy();
  }

  private buffer(response: http.IncomingMessage, res: http.ServerResponse): void {
    this.bufferedStreams += 1;
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("end", () => {
      res.writeHead(response.statusCode ?? 502, response.headers);
      res.end(Buffer.concat(chunks));
    });
  }

  async stop(): Promise<void> {
    this.block();
    for (const socket of this.held) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
