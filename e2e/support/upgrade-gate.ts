import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";

/**
 * A loopback reverse proxy in front of Pulse that passes HTTP through and can refuse
 * WebSocket upgrades, as a proxy or firewall that blocks WebSockets would: `block()` drops
 * the open sockets and answers new upgrades 503; `allow()` lets them through again.
 * `bufferStreams()` also holds every `text/event-stream` response back until it ends, as a
 * buffering proxy (or a virus scanner) does, so server-sent events never reach the page.
 * `goDown()` drops every connection and every new request, as a server that went away;
 * `comeBack()` passes them again.
 */
export class UpgradeGate {
  private readonly server: http.Server;
  private readonly tunnels = new Set<net.Socket>();
  private readonly streams = new Set<http.ServerResponse>();
  private blocked = false;
  private buffering = false;
  private down = false;
  refusedUpgrades = 0;
  /** Event-stream responses passed through, and held back by `bufferStreams()`. */
  passedStreams = 0;
  bufferedStreams = 0;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    const agent = new http.Agent({ keepAlive: true });
    this.server = http.createServer((req, res) => {
      if (this.down) return void req.socket.destroy();
      const upstream = http.request(
        { host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
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
    });
    this.server.on("upgrade", (req, socket, head) => {
      if (this.down) return void socket.destroy();
      if (this.blocked) {
        this.refusedUpgrades += 1;
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const upstream = net.connect(target.port, target.host, () => {
        const headers = Object.entries(req.headers).flatMap(([k, v]) =>
          Array.isArray(v) ? v.map((x) => `${k}: ${x}`) : [`${k}: ${v}`],
        );
        upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers.join("\r\n")}\r\n\r\n`);
        if (head.length) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
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

  allow(): void {
    this.blocked = false;
  }

  /** Nothing reaches the server from now on: open sockets, streams and connections are cut, new ones dropped. */
  goDown(): void {
    this.down = true;
    for (const tunnel of this.tunnels) tunnel.destroy();
    for (const stream of this.streams) stream.destroy();
    this.server.closeAllConnections();
  }

  comeBack(): void {
    this.down = false;
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
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
