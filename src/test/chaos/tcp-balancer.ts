import net from "node:net";

export interface TcpBalancerOptions {
  /** Ports on 127.0.0.1 to spread connections over, round-robin. */
  backends?: number[];
  /** Tries per incoming connection before giving up (a backend that refuses is skipped). */
  connectTries?: number;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  backend: number;
}

/**
 * A loopback TCP balancer, standing in for whatever sits in front of Pulse's replicas (or
 * between a process and its database): it spreads connections over live backends
 * round-robin, skipping one that refuses, and lets a test take a backend out, cut every
 * connection (an outage), or stop reading from backends (a client that stopped reading).
 */
export class TcpBalancer {
  private server?: net.Server;
  private backends: number[];
  private next = 0;
  private readonly pairs = new Set<Pair>();
  private cutOff = false;
  private refusing = false;
  private stalled = false;
  /** Connections accepted since start, for figures. */
  accepted = 0;
  port = 0;

  constructor(private readonly options: TcpBalancerOptions = {}) {
    this.backends = [...(options.backends ?? [])];
  }

  async start(): Promise<this> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    return this;
  }

  /** Open connections through the balancer. */
  get size(): number {
    return this.pairs.size;
  }

  /** Connections per backend port. */
  spread(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const pair of this.pairs) counts.set(pair.backend, (counts.get(pair.backend) ?? 0) + 1);
    return counts;
  }

  add(port: number): void {
    if (!this.backends.includes(port)) this.backends.push(port);
  }

  /** Stops sending new connections to `port`; with `drop`, also resets the ones it holds. */
  remove(port: number, options: { drop?: boolean } = {}): void {
    this.backends = this.backends.filter((p) => p !== port);
    if (options.drop) for (const pair of [...this.pairs]) if (pair.backend === port) this.destroy(pair);
  }

  /** An outage: every open connection is reset and new ones are refused until `restore()`. */
  cut(): void {
    this.cutOff = true;
    this.dropAll();
  }

  restore(): void {
    this.cutOff = false;
    this.refusing = false;
  }

  /** New connections are reset; the open ones stay as they are (a route that went dead for newcomers). */
  refuseNew(): void {
    this.refusing = true;
  }

  /** Resets every open connection (clients reconnect; new connections are accepted). */
  dropAll(): void {
    for (const pair of [...this.pairs]) this.destroy(pair);
  }

  /**
   * Stops reading what backends send, for the open connections and the ones to come, so
   * their sends pile up as a client that stopped reading would make them.
   */
  stall(): void {
    this.stalled = true;
    for (const pair of this.pairs) stop(pair.upstream, pair.client);
  }

  async close(): Promise<void> {
    this.dropAll();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.accepted += 1;
    client.on("error", () => {});
    if (this.cutOff || this.refusing) {
      client.resetAndDestroy();
      return;
    }
    client.pause();
    this.connect(client, this.options.connectTries ?? Math.max(3, this.backends.length * 2));
  }

  private connect(client: net.Socket, triesLeft: number): void {
    if (this.backends.length === 0 || triesLeft <= 0 || client.destroyed || this.cutOff) {
      client.resetAndDestroy();
      return;
    }
    const backend = this.backends[this.next++ % this.backends.length]!;
    const upstream = net.connect({ port: backend, host: "127.0.0.1" });
    let connected = false;
    upstream.once("error", () => {
      // A backend that refuses (it died, or is starting) is skipped for this connection.
      if (!connected) this.connect(client, triesLeft - 1);
    });
    upstream.once("connect", () => {
      connected = true;
      if (client.destroyed || this.cutOff) {
        upstream.destroy();
        return;
      }
      const pair: Pair = { client, upstream, backend };
      this.pairs.add(pair);
      upstream.on("error", () => this.destroy(pair));
      client.on("error", () => this.destroy(pair));
      upstream.on("close", () => this.destroy(pair));
      client.on("close", () => this.destroy(pair));
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      if (this.stalled) stop(upstream, client);
    });
  }

  private destroy(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    // A reset, as a dead peer or a dropped route would show; a polite FIN could hide bugs.
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }
}

/** Stops reading `from` for good: unpiped first, or the pipe would resume it on the next drain. */
function stop(from: net.Socket, to: net.Socket): void {
  from.unpipe(to);
  from.pause();
}
