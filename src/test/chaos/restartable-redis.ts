import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort, PrivateRedisServer } from "../../server/private-redis-server";

/**
 * A chaos suite's own redis-server that can be restarted on the same port (so every
 * process's REDIS_URL stays valid), with or without its data: `persist` keeps an
 * append-only file in the suite's directory, which a graceful restart replays.
 */
export class RestartableRedis {
  private server?: PrivateRedisServer;
  private dir = "";
  port = 0;

  constructor(private persist: boolean) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get persistent(): boolean {
    return this.persist;
  }

  async start(): Promise<this> {
    this.dir = await mkdtemp(path.join(os.tmpdir(), "pulse-chaos-redis-"));
    this.port = await freePort();
    await this.launch();
    return this;
  }

  /**
   * Stops Redis and starts it again on the same port. `crash` kills it (SIGKILL) rather
   * than letting it shut down (which flushes the append-only file first); without
   * persistence it comes back empty either way.
   */
  async restart(options: { crash: boolean; downMs?: number; persist?: boolean }): Promise<void> {
    if (options.crash) await this.server?.kill();
    // The directory is ours, not the server's, so a graceful stop leaves the data in it.
    else await this.server?.stop();
    if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
    if (options.persist !== undefined) this.persist = options.persist;
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.server?.kill();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    this.server = await new PrivateRedisServer({ port: this.port, dir: this.dir, persist: this.persist }).start();
  }
}
