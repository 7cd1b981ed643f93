import { mkdir, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import path from "node:path";

/**
 * Records this process's CPU profile between two requests of the orchestrator (the load
 * steps of a scenario), so the profile shows the steady state of delivering events rather
 * than start-up and connection set-up.
 */
export class CpuProfiler {
  private session?: Session;

  async start(): Promise<void> {
    if (this.session) return;
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
    await session.post("Profiler.start");
    this.session = session;
  }

  /** Stops recording and writes the profile (Chrome DevTools' .cpuprofile format) to `file`. */
  async stop(file: string): Promise<string | null> {
    const session = this.session;
    if (!session) return null;
    this.session = undefined;
    const { profile } = await session.post("Profiler.stop");
    session.disconnect();
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(profile));
    return file;
  }
}
