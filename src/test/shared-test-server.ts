/**
 * A test server shared by every vitest project's global setup in this run: started by the
 * first project that needs it, stopped after the last one's teardown. Global setups run in
 * vitest's main process, one per project that has test files queued, so a run that needs no
 * cluster starts none, and two projects that need it share one.
 */
interface Shared {
  users: number;
  started: Promise<{ stop(): Promise<void> }>;
}

const servers: Map<string, Shared> = ((globalThis as { pulseTestServers?: Map<string, Shared> }).pulseTestServers ??=
  new Map());

/** The server called `name`, started with `start` unless a project started it already; `release` when done with it. */
export async function acquireTestServer<T extends { stop(): Promise<void> }>(
  name: string,
  start: () => Promise<T>,
): Promise<{ server: T; release(): Promise<void> }> {
  let shared = servers.get(name);
  if (!shared) {
    shared = { users: 0, started: start() };
    servers.set(name, shared);
  }
  shared.users += 1;
  const entry = shared;
  const release = async () => {
    entry.users -= 1;
    if (entry.users > 0) return;
    if (servers.get(name) === entry) servers.delete(name);
    await (await entry.started).stop();
  };
  try {
    return { server: (await entry.started) as T, release };
  } catch (error) {
    entry.users -= 1;
    if (entry.users === 0 && servers.get(name) === entry) servers.delete(name);
    throw error;
  }
}
