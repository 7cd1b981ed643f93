import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../../..");

/** Which entry point a child runs: an API replica (`npm start`) or a worker process (`npm run worker`). */
export type PulseChildKind = "api" | "worker";

const ENTRY: Record<PulseChildKind, { file: string; ready: RegExp }> = {
  api: { file: "src/server/main.ts", ready: /Pulse is running on http:\/\/127\.0\.0\.1:(\d+)/ },
  worker: { file: "src/server/worker-main.ts", ready: /workers running/ },
};

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From the signal that stopped it to its exit. */
  ms: number;
}

/** Output kept per child: enough to explain a failure, bounded however long it runs. */
const MAX_OUTPUT = 200_000;

/**
 * One Pulse process as production runs it (`tsx src/server/main.ts` or `worker-main.ts`),
 * configured only through its environment, which a test can kill or stop at any moment.
 */
export class PulseChild {
  private child?: ChildProcess;
  private exitedAt?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private outputText = "";
  port = 0;

  constructor(
    readonly kind: PulseChildKind,
    readonly name: string,
    private readonly env: Record<string, string>,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get output(): string {
    return this.outputText;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the process and resolves once it says it is serving (or its workers run). */
  async start(timeoutMs = 120_000): Promise<this> {
    const entry = ENTRY[this.kind];
    const child = spawn(process.execPath, ["--import", "tsx", entry.file], {
      cwd: root,
      env: { NODE_ENV: "production", PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const append = (d: Buffer) => {
      this.outputText += d.toString();
      if (this.outputText.length > MAX_OUTPUT) this.outputText = this.outputText.slice(-MAX_OUTPUT / 2);
    };
    child.stdout!.on("data", append);
    child.stderr!.on("data", append);
    this.exitedAt = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const match = entry.ready.exec(this.outputText);
      if (match) {
        if (match[1]) this.port = Number(match[1]);
        return this;
      }
      if (!this.running) throw new Error(`${this.name} exited at start:\n${this.outputText.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill("SIGKILL");
    throw new Error(`${this.name} did not start within ${timeoutMs} ms:\n${this.outputText.slice(-4000)}`);
  }

  /** Sends `signal` and waits for the exit; after `timeoutMs` the process is killed and the wait fails. */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 60_000): Promise<ChildExit> {
    const child = this.child;
    if (!child || !this.exitedAt) throw new Error(`${this.name} was never started`);
    const sentAt = Date.now();
    if (this.running) child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    const result = await Promise.race([this.exitedAt, timedOut]);
    clearTimeout(timer);
    if (result === "timeout") {
      child.kill("SIGKILL");
      await this.exitedAt;
      throw new Error(
        `${this.name} did not exit within ${timeoutMs} ms of ${signal}:\n${this.outputText.slice(-4000)}`,
      );
    }
    return { ...result, ms: Date.now() - sentAt };
  }

  /** A crash: SIGKILL, no chance to clean up. */
  kill(): Promise<ChildExit> {
    return this.stop("SIGKILL");
  }
}
