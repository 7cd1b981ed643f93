import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  startTestPulse,
  storedOutput,
  type TestPulse,
} from "../../test/harness";
import { failureOf, httpClient } from "../../test/security/security-kit";
import { OUTPUT_WINDOW_CHARS, type AgentSnapshot } from "./snapshot";

/**
 * A run keeps the last `outputMaxChars` characters of its output, views of it carry the last
 * `OUTPUT_WINDOW_CHARS`, and the rest is read a page at a time.
 */

const ROLE = "writer";
const CAP = 100_000;
const CHUNK = 10_000;
const CHUNKS = 13;
const TOTAL = CHUNK * CHUNKS;

let app: TestPulse;
beforeAll(async () => {
  app = await startTestPulse({ runWorkers: false, externalAgentRoles: [ROLE], bus: { outputMaxChars: CAP } });
});
afterAll(async () => {
  await app?.close();
});

/** Chunk `i`: its number, then filler, so any slice of the output says where it came from. */
const chunk = (i: number) => `<${i}>`.padEnd(CHUNK, String.fromCharCode(97 + (i % 26)));
const everything = Array.from({ length: CHUNKS }, (_, i) => chunk(i)).join("");

/** A run of a fresh tenant that has written `TOTAL` characters of output through the bus. */
async function writtenRun() {
  const tenant = await createQuietTenant(app);
  const { runs, bus } = app.pulse.services;
  const run = await runs.start(tenant.tenantId, ROLE);
  const base = {
    tenantId: tenant.tenantId,
    runId: run.id,
    jobId: run.jobId,
    queue: run.queue,
    agentRole: ROLE,
    attempt: 1,
  };
  await bus.publish({ ...base, type: "agent:active", startedAt: new Date().toISOString() });
  for (let i = 0; i < CHUNKS; i++) await bus.publish({ ...base, type: "agent:output", chunk: chunk(i) });
  return { tenant, run, base, http: httpClient(app, tenant.token) };
}

/** The run's first attempt fails, to be retried, and its second starts. */
async function retried(base: Awaited<ReturnType<typeof writtenRun>>["base"]) {
  const { bus } = app.pulse.services;
  await bus.publish({
    ...base,
    type: "agent:failed",
    error: "boom",
    failedAt: new Date().toISOString(),
    willRetry: true,
  });
  await bus.publish({ ...base, attempt: 2, type: "agent:active", startedAt: new Date().toISOString() });
}

describe("a run's output", () => {
  it("is kept as its last RUN_OUTPUT_MAX_CHARS characters in the database, counting the ones dropped", async () => {
    const { run } = await writtenRun();
    const { db } = app.pulse.services;
    const row = await db.agentRun.findUniqueOrThrow({ where: { id: run.id } });
    const output = await storedOutput(db, run.id);
    expect(output.length).toBe(CAP);
    expect(output).toBe(everything.slice(-CAP));
    expect(row.outputLength).toBe(TOTAL);
  });

  it("is appended a chunk at a time, leaving what was written before untouched", async () => {
    const { run, base } = await writtenRun();
    const { db, bus } = app.pulse.services;
    // xmin: the transaction that wrote the row version, which any rewrite of a row changes.
    const chunks = () => db.$queryRaw<{ start: number; version: string }[]>`
      SELECT "start", xmin::text AS "version" FROM "RunOutputChunk" WHERE "runId" = ${run.id} ORDER BY "start"`;
    const before = await chunks();
    expect(before.map((c) => c.start)).toEqual(Array.from({ length: 10 }, (_, i) => TOTAL - CAP + i * CHUNK));
    await bus.publish({ ...base, type: "agent:output", chunk: chunk(CHUNKS) });
    const after = await chunks();
    // The oldest chunk fell out of the last CAP characters; the others are the very same rows.
    expect(after.slice(0, -1)).toEqual(before.slice(1));
    expect(after.at(-1)!.start).toBe(TOTAL);
    // The old attempt's chunks go when the next attempt starts.
    await retried(base);
    expect(await chunks()).toEqual([]);
  });

  it("reaches a one-run view (agent.get, share.run, the subscription's snapshot) as its newest window only, with where it starts", async () => {
    const { tenant, run, http } = await writtenRun();
    const window = {
      output: everything.slice(-OUTPUT_WINDOW_CHARS),
      outputStart: TOTAL - OUTPUT_WINDOW_CHARS,
      outputDropped: TOTAL - CAP,
    };
    expect(await http.agent.get.query({ runId: run.id })).toMatchObject(window);
    const share = await app.pulse.services.shares.create(tenant.session, run.id, 3600);
    expect(await httpClient(app, share.token).share.run.query()).toMatchObject(window);

    const viewer = connectClient(app, share.token);
    const feed = collect((h) => viewer.trpc.share.onRun.subscribe({}, h));
    try {
      const [first] = await eventually(
        () => feed.items,
        (items) => items.length > 0,
        "the share snapshot",
      );
      const snapshot = (first!.data as { type: "snapshot"; snapshot: AgentSnapshot }).snapshot;
      expect(snapshot.runs[0]).toMatchObject(window);
    } finally {
      feed.unsubscribe();
      await viewer.close();
    }
    // Lists never carry output at all.
    const { runs } = await http.agent.list.query({});
    expect(runs.find((r) => r.id === run.id)).not.toHaveProperty("output");
  });

  it("is paged backwards from a view's start down to the first character kept, and forwards from an offset, for members and share links alike", async () => {
    const { tenant, run, http } = await writtenRun();
    const view = await http.agent.get.query({ runId: run.id });
    const earlier = await http.agent.output.query({ runId: run.id, before: view.outputStart! });
    expect(earlier).toEqual({
      text: everything.slice(TOTAL - CAP, view.outputStart!),
      start: TOTAL - CAP,
      end: view.outputStart!,
      dropped: TOTAL - CAP,
    });
    // The page that reaches the dropped part starts where the run's output now starts.
    expect(await http.agent.output.query({ runId: run.id, before: 5, limit: 10 })).toEqual({
      text: "",
      start: TOTAL - CAP,
      end: TOTAL - CAP,
      dropped: TOTAL - CAP,
    });
    expect(await http.agent.output.query({ runId: run.id, after: 0, limit: 10 })).toMatchObject({
      text: everything.slice(TOTAL - CAP, TOTAL - CAP + 10),
      start: TOTAL - CAP,
    });
    expect(await http.agent.output.query({ runId: run.id, after: TOTAL - 4 })).toMatchObject({
      text: everything.slice(-4),
      end: TOTAL,
    });
    expect(await http.agent.output.query({ runId: run.id, limit: 7 })).toMatchObject({
      text: everything.slice(-7),
      start: TOTAL - 7,
      end: TOTAL,
    });

    const share = await app.pulse.services.shares.create(tenant.session, run.id, 3600);
    expect(await httpClient(app, share.token).share.output.query({ before: view.outputStart! })).toEqual(earlier);

    expect((await failureOf(http.agent.output.query({ runId: run.id, before: 10, after: 5 })))?.data?.code).toBe(
      "BAD_REQUEST",
    );
    expect(
      (await failureOf(http.agent.output.query({ runId: run.id, limit: OUTPUT_WINDOW_CHARS + 1 })))?.data?.code,
    ).toBe("BAD_REQUEST");
    const stranger = await createQuietTenant(app);
    expect((await failureOf(httpClient(app, stranger.token).agent.output.query({ runId: run.id })))?.data?.code).toBe(
      "NOT_FOUND",
    );
  });

  it("starts afresh with a new attempt", async () => {
    const { run, base, http } = await writtenRun();
    const { bus } = app.pulse.services;
    await retried(base);
    await bus.publish({ ...base, attempt: 2, type: "agent:output", chunk: "again" });
    expect(await http.agent.get.query({ runId: run.id })).toMatchObject({
      output: "again",
      outputStart: 0,
      outputDropped: 0,
    });
  });
});
