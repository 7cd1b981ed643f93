import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

/**
 * Request/reply over Node's IPC channel between the bench orchestrator and its child
 * processes (servers, publishers, clients), so every process of a run is driven from one
 * place and reports its own figures.
 */

interface RequestMessage {
  bench: "request";
  id: number;
  type: string;
  payload: unknown;
}

type ReplyBody = { ok: true; result: unknown } | { ok: false; error: string };
type ReplyMessage = { bench: "reply"; id: number } & ReplyBody;

const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/**
 * Open files each bench process may hold: the idle scenario's 50,000 connections need more
 * on the server's and the clients' side than a shell's usual limit (often 1,024 to 20,000).
 */
const OPEN_FILES = 200_000;
/** Whether raising a child's limit failed: the children then have the limit this process has. */
let openFilesFixed = false;

/** Raises a child's open-file limit with prlimit(1), which needs CAP_SYS_RESOURCE (root, outside most containers) above the hard limit. */
function raiseOpenFiles(name: string, pid: number | undefined): void {
  if (pid === undefined || openFilesFixed) return;
  try {
    execFileSync("prlimit", [`--pid=${pid}`, `--nofile=${OPEN_FILES}:${OPEN_FILES}`], { stdio: "ignore" });
  } catch {
    openFilesFixed = true;
    console.error(
      `bench: could not raise ${name}'s open-file limit to ${OPEN_FILES} (prlimit needs CAP_SYS_RESOURCE): each process keeps ${openFileLimit()}`,
    );
  }
}

/** This process's own open-file limit, read once (a child inherits it). */
let ownOpenFiles: number | undefined;

/** The open files each bench process may hold. */
export function openFileLimit(): number {
  if (!openFilesFixed) return OPEN_FILES;
  if (ownOpenFiles === undefined) {
    const soft = Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
    ownOpenFiles = Number.isFinite(soft) ? soft : Number.POSITIVE_INFINITY;
  }
  return ownOpenFiles;
}

export interface BenchProcessOptions {
  /** Name in error messages and logs. */
  name: string;
  /** Script path relative to the repository root. */
  script: string;
  env?: NodeJS.ProcessEnv;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Where the child's stdout/stderr go: the orchestrator's own, or nowhere. */
  quiet?: boolean;
}

/**
 * A child process of the bench, started as `node --expose-gc --import tsx <script>` so it
 * can report its heap after a full collection, and driven by typed requests over IPC.
 */
export class BenchProcess {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }
  >();
  private exitError: Error | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on("message", (message: ReplyMessage) => {
      if (message?.bench !== "reply") return;
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.ok) waiter.resolve(message.result);
      else waiter.reject(new Error(`${name}: ${message.error}`));
    });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitError = new Error(`${name} exited (${signal ?? `code ${code}`})`);
        for (const waiter of this.pending.values()) {
          clearTimeout(waiter.timer);
          waiter.reject(this.exitError);
        }
        this.pending.clear();
        resolve();
      });
    });
  }

  static start(options: BenchProcessOptions): BenchProcess {
    const child = spawn(
      process.execPath,
      ["--expose-gc", ...(options.nodeArgs ?? []), "--import", "tsx", path.join(REPO_ROOT, options.script)],
      {
        cwd: REPO_ROOT,
        env: options.env ?? process.env,
        stdio: ["ignore", options.quiet ? "ignore" : "inherit", options.quiet ? "ignore" : "inherit", "ipc"],
        serialization: "advanced",
      },
    );
    raiseOpenFiles(options.name, child.pid);
    return new BenchProcess(options.name, child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitError === null;
  }

  /** Sends a request and resolves with the child's answer; rejects on its error, its exit, or the timeout. */
  request<T>(type: string, payload: unknown = {}, timeoutMs = 60_000): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      const message: RequestMessage = { bench: "request", id, type, payload };
      this.child.send(message, (error) => {
        if (!error) return;
        const waiter = this.pending.get(id);
        if (!waiter) return;
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`${this.name}: could not send "${type}": ${error.message}`));
      });
    });
  }

  /** Asks the child to stop (request "stop"), and kills it if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.exitError) return;
    this.request("stop", {}, graceMs).catch(() => {});
    const killed = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(killed);
  }

  /** Ends the child at once. */
  async kill(): Promise<void> {
    if (this.exitError) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

// Each handler takes its own request's payload, which no single type but `any` describes.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RequestHandlers = Record<string, (payload: any) => unknown>;

/**
 * The child's side: answers the orchestrator's requests with `handlers`, and exits when the
 * orchestrator goes away (its IPC channel closes), so no bench process outlives a run.
 */
export function answerRequests(handlers: RequestHandlers): void {
  if (!process.send) throw new Error("this script is a bench child process: start it with `npm run bench`");
  process.on("message", (message: RequestMessage) => {
    if (message?.bench !== "request") return;
    const handler = handlers[message.type];
    const reply = (result: ReplyBody) => process.send?.({ bench: "reply", id: message.id, ...result } as ReplyMessage);
    if (!handler) {
      reply({ ok: false, error: `unknown request "${message.type}"` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.payload))
      .then(
        (result) => reply({ ok: true, result }),
        (error: unknown) =>
          reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  process.on("disconnect", () => process.exit(0));
}
