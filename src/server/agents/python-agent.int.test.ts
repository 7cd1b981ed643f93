import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareStreamIds } from "../../shared/stream-id";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  startTestPulse,
  type TestPulse,
} from "../../test/harness";

/**
 * The example external agent in Python (examples/python, standard library only) against a
 * running Pulse: every event it reports reaches a subscribed dashboard in order, and the run
 * ends completed with its steps, logs and output stored.
 */

const root = path.resolve(import.meta.dirname, "../../..");
const python = spawnSync("python3", ["--version"]).status === 0;
const ROLE = "python-researcher";
let app: TestPulse;

beforeAll(async () => {
  if (python) app = await startTestPulse({ externalAgentRoles: [ROLE] });
});
afterAll(async () => {
  await app?.close();
});

/** Runs the example agent to its end; its exit code and what it printed. */
function runAgent(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", [path.join(root, "examples/python/research_agent.py"), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe.skipIf(!python)("the Python example agent (skipped: python3 is not on PATH)", () => {
  it("reports a run that every dashboard of the tenant follows live, to completed", async () => {
    const tenant = await createQuietTenant(app);
    const client = connectClient(app, tenant.token);
    try {
      const started = await client.trpc.agent.run.mutate({ agentRole: ROLE });
      expect(started.reportToken).toEqual(expect.any(String));
      const seen = collect((handlers) => client.trpc.agent.onStatus.subscribe({ runId: started.runId }, handlers));
      await eventually(
        () => seen.items.length,
        (n) => n > 0,
        "the subscription's snapshot",
      );

      const agent = await runAgent([
        "--pulse",
        app.baseUrl,
        "--run",
        started.runId,
        "--token",
        started.reportToken!,
        "--pause",
        "0",
      ]);
      expect(agent).toEqual({ code: 0, output: "" });

      const events = await eventually(
        () => seen.events().map((item) => item.data),
        (list) => list.some((e) => e.type === "agent:completed"),
        "the run's completion on the dashboard",
      );
      expect(seen.errors).toEqual([]);
      expect(events[0]).toMatchObject({ type: "agent:active" });
      expect(events.filter((e) => e.type === "agent:step").map((e) => `${e.name}: ${e.status}`)).toEqual([
        "Read the company website: started",
        "Read the company website: completed",
        "Read the annual report: started",
        "Read the annual report: completed",
        "Read the press coverage: started",
        "Read the press coverage: completed",
        "Write the summary: started",
        "Write the summary: completed",
      ]);
      // Delivered in the order reported, each once: the stream's ids strictly increase.
      const ids = seen.events().map((item) => item.id);
      expect(ids.every((id, i) => i === 0 || compareStreamIds(ids[i - 1]!, id) < 0)).toBe(true);

      const run = await client.trpc.agent.get.query({ runId: started.runId });
      expect(run).toMatchObject({ status: "completed", progress: 100 });
      expect(run.output).toContain("three sources read, summary ready.");
      const logs = await client.trpc.agent.logs.query({ runId: started.runId });
      expect(logs.logs.map((l) => l.message)).toEqual(["researching Acme Logistics"]);
      seen.unsubscribe();
    } finally {
      await client.close();
    }
  });

  it("exits non-zero with Pulse's refusal in one line when its token is not the run's", async () => {
    const tenant = await createQuietTenant(app);
    const client = connectClient(app, tenant.token);
    try {
      const started = await client.trpc.agent.run.mutate({ agentRole: ROLE });
      const agent = await runAgent([
        "--pulse",
        app.baseUrl,
        "--run",
        started.runId,
        "--token",
        "not-a-token",
        "--pause",
        "0",
      ]);
      expect(agent).toEqual({
        code: 1,
        output: expect.stringMatching(
          /^Pulse refused a report: 401 UNAUTHORIZED: a valid run report token is required/,
        ),
      });
    } finally {
      await client.close();
    }
  });
});
