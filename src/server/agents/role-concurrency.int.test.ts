import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { PulseError } from "../errors";
import { createQuietTenant, startTestPulse, type TestPulse } from "../../test/harness";
import { defineAgent } from "./define-agent";

/** How many runs of a role a tenant may have at once: one by default, as declared, or one per key of the input. */

const agents = [
  defineAgent({ role: "single", run: async () => {} }),
  defineAgent({ role: "pair", concurrencyPerTenant: 2, run: async () => {} }),
  defineAgent({
    role: "doc-summarizer",
    input: z.object({ documentId: z.string() }),
    concurrencyKey: (input) => input.documentId,
    run: async () => {},
  }),
];
let app: TestPulse;

beforeAll(async () => {
  // No workers: every run stays queued, so each counts against its role's limit.
  app = await startTestPulse({ agents, runWorkers: false });
});
afterAll(async () => {
  await app?.close();
});

const conflict = (promise: Promise<unknown>) =>
  promise.then(
    () => "started",
    (error: unknown) => (error instanceof PulseError ? `${error.code}: ${error.message}` : String(error)),
  );

describe("a role's concurrency", () => {
  it("is one run per tenant by default, and what the role declares otherwise; other tenants are not counted", async () => {
    const { runs } = app.pulse.services;
    const [a, b] = [await createQuietTenant(app), await createQuietTenant(app)];
    await runs.start(a.tenantId, "single");
    expect(await conflict(runs.start(a.tenantId, "single"))).toMatch(/^CONFLICT: single is already queued/);
    await runs.start(a.tenantId, "pair");
    await runs.start(a.tenantId, "pair");
    expect(await conflict(runs.start(a.tenantId, "pair"))).toMatch(
      /^CONFLICT: pair already has 2 runs queued or running/,
    );
    expect(await conflict(runs.start(b.tenantId, "pair"))).toBe("started");
  });

  it("with a key, allows one run per document and refuses a second for the same one", async () => {
    const { runs } = app.pulse.services;
    const { tenantId } = await createQuietTenant(app);
    await runs.start(tenantId, "doc-summarizer", { input: { documentId: "doc-1" } });
    expect(await conflict(runs.start(tenantId, "doc-summarizer", { input: { documentId: "doc-2" } }))).toBe("started");
    expect(await conflict(runs.start(tenantId, "doc-summarizer", { input: { documentId: "doc-1" } }))).toMatch(
      /^CONFLICT: doc-summarizer is already queued for "doc-1"/,
    );
  });
});
