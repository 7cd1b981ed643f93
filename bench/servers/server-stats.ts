import type { Server, Socket } from "node:net";
import { CpuProfiler } from "../cpu-profiler";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";

/** What a bench server reports about itself: CPU so far, memory, open connections. */
export interface ServerStats {
  /** User + system CPU time of the process since it started (µs). */
  cpuUs: number;
  heapUsed: number;
  /** `heapUsed` without V8's code spaces: what objects hold, not the compiled code the JIT happened to add meanwhile. */
  objectHeapUsed: number;
  rss: number;
  connections: number;
}

/**
 * Reads the process's figures; with `gc`, after full collections first, so heap per
 * connection measures what the connections hold rather than garbage not yet collected.
 */
export async function serverStats(connections: () => number, options: { gc?: boolean } = {}): Promise<ServerStats> {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (options.gc && collect) {
    // Several times, with a turn of the event loop between, so finalizers' garbage goes too.
    for (let i = 0; i < 3; i++) {
      collect();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  const objectHeapUsed = getHeapSpaceStatistics()
    .filter((space) => !space.space_name.includes("code"))
    .reduce((sum, space) => sum + space.space_used_size, 0);
  return {
    cpuUs: cpu.user + cpu.system,
    heapUsed: memory.heapUsed,
    objectHeapUsed,
    rss: memory.rss,
    connections: connections(),
  };
}

/** Writes a heap snapshot (after full collections) for `heap-summary.ts`; returns its path. */
export async function heapSnapshot(file: string): Promise<string> {
  await serverStats(() => 0, { gc: true });
  await mkdir(path.dirname(file), { recursive: true });
  return writeHeapSnapshot(file);
}

/** Exits shortly after answering, so the reply to "stop" reaches the orchestrator (and --cpu-prof writes its file). */
export function exitSoon(code = 0): void {
  setTimeout(() => process.exit(code), 50);
}

/** The requests every bench child answers the same way: CPU profiles and heap snapshots. */
export function diagnosticRequests() {
  const profiler = new CpuProfiler();
  return {
    "profile-start": () => profiler.start(),
    "profile-stop": (payload: { file: string }) => profiler.stop(payload.file),
    "heap-snapshot": (payload: { file: string }) => heapSnapshot(payload.file),
  };
}

/**
 * Every TCP connection `server` accepts from now on, and a way to destroy them all at once
 * (resolving to how many there were): a deploy, as the clients of a reconnect storm see it.
 */
export function connectionDropper(server: Server): () => number {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return () => {
    const count = sockets.size;
    for (const socket of sockets) socket.destroy();
    return count;
  };
}
