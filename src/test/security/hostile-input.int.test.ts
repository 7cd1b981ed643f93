import { TRPCError } from "@trpc/server";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { reportBodySchema } from "../../server/events/report-schema";
import { appRouter, createCaller } from "../../server/trpc/root";
import type { Context } from "../../server/trpc/trpc";
import { createQuietTenant, startTestPulse, type TestPulse } from "../harness";
import { AttackLog, postRunEvent } from "./security-kit";

/**
 * Every procedure's input schema, driven with hostile strings in every string position
 * (NUL, lone surrogates, a megabyte, prototype keys, direction marks, percent-encodings,
 * dates at the edges of what JavaScript can hold): whatever the input, the answer is a
 * client error or a result, never INTERNAL_SERVER_ERROR. Inputs are generated from each
 * procedure's own zod schema by a seeded generator, so a failure replays.
 */

const LONG = process.env.PULSE_LONG === "1";
// Well over a thousand calls, several hashing a password: room for a loaded machine.
vi.setConfig({ testTimeout: LONG ? 900_000 : 300_000 });
const log = new AttackLog("hostile-input", LONG);
const PROCEDURE_ATTACK = "Hostile string in a procedure input";
const REPORT_ATTACK = "Hostile string in an external agent's report";
const ADDRESS_ATTACK = "Malformed percent-encoding in the address";

/** Strings that broke, or could break, something between zod and PostgreSQL, Redis or the logs. */
const HOSTILE_STRINGS = [
  "\u0000",
  "a\u0000b",
  "\uD800",
  "\uDC00",
  "x\uD83D",
  "\uDE00x",
  "x".repeat(1 << 20),
  "__proto__",
  "constructor",
  "prototype",
  "\u202Eevil\u202C",
  "\u200F\u200E",
  "😀👨‍👩‍👧‍👦",
  "%00",
  "%E0%A4%A",
  "%",
  "0000-01-01T00:00:00Z",
  "0000-01-01T00:00:00.000Z",
  "9999-12-31T23:59:59.999Z",
  "1969-12-31T23:59:59Z",
  "+275760-09-13T00:00:00.000Z",
  "275760-09-13T00:00:00Z",
  "2026-02-30T00:00:00Z",
  "",
  " ",
  "0-0",
  "18446744073709551615-18446744073709551615",
  "99999999999999999999-0",
  "0-99999999999999999999",
  "1-1",
  "queued",
  "a@b.co",
  "\u0000@b.co",
  "\uD800@b.co",
];
/** Every hostile string reaches every string field twice (twelve times in the long run). */
const ROUNDS = (LONG ? 12 : 2) * HOSTILE_STRINGS.length;

/** mulberry32: a small seeded generator, so every run tries the same inputs. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const pick = <T>(random: Random, values: readonly T[]): T => values[Math.floor(random() * values.length)]!;

/**
 * Valid values for some fields, used half of the time in place of a hostile one, so inputs
 * get past the fields that would refuse them anyway and the hostile rest reaches the database.
 */
const plausible: Record<string, string[]> = {
  agentRole: ["hostile-agent"],
  email: ["someone@example.test"],
  password: ["correct horse battery"],
  tenantName: ["Hostile Co"],
  before: [new Date().toISOString()],
};

/**
 * Values for zod schemas, read from zod 4's definitions, with a hostile string wherever a
 * string goes. Round `r` puts `HOSTILE_STRINGS[r + i]` in the input's i-th string, so within
 * as many rounds as there are hostile strings, each reaches every string field.
 */
class HostileInputs {
  private position = 0;

  constructor(
    private readonly random: Random,
    private readonly round: number,
  ) {}

  value(schema: any, key = "", depth = 0): unknown {
    const def = schema?._zod?.def;
    if (!def || depth > 8) return undefined;
    const { random } = this;
    const checks: any[] = (def.checks ?? []).map((c: any) => c._zod.def);
    const inner = (of: unknown, field = key) => this.value(of, field, depth + 1);
    switch (def.type) {
      case "object":
        return Object.fromEntries(
          Object.entries(def.shape)
            .map(([field, value]) => [field, inner(value, field)] as const)
            .filter(([, value]) => value !== undefined),
        );
      case "string":
        if (plausible[key] && random() < 0.5) return pick(random, plausible[key]);
        return HOSTILE_STRINGS[(this.round + this.position++) % HOSTILE_STRINGS.length];
      case "number": {
        const min = checks.find((c) => c.check === "greater_than")?.value ?? -1e6;
        const max = checks.find((c) => c.check === "less_than")?.value ?? 1e6;
        return pick(random, [min, max, Math.floor((min + max) / 2), Math.max(min, Math.min(max, 1))]);
      }
      case "boolean":
        return random() < 0.5;
      case "enum":
        return pick(random, Object.values(def.entries));
      case "literal":
        return def.values[0];
      case "optional":
      case "nullable":
      case "default":
      case "prefault":
        return random() < 0.1 ? undefined : inner(def.innerType);
      case "readonly":
      case "nonoptional":
      case "catch":
        return inner(def.innerType);
      case "pipe":
        return inner(def.in);
      case "array":
        return Array.from({ length: 1 + Math.floor(random() * 3) }, () => inner(def.element, ""));
      case "record":
        return Object.fromEntries(
          Array.from({ length: 1 + Math.floor(random() * 3) }, () => [
            inner(def.keyType, "") as string,
            inner(def.valueType, ""),
          ]),
        );
      case "union":
        return inner(pick(random, def.options));
      default:
        return undefined;
    }
  }
}

type AnyProcedure = { _def: { type: "query" | "mutation" | "subscription"; inputs: unknown[] } };
const procedures = (appRouter as unknown as { _def: { procedures: Record<string, AnyProcedure> } })._def.procedures;

let app: TestPulse;
let tenant: Awaited<ReturnType<typeof createQuietTenant>>;
let member: Context;
let viewer: Context;
beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    externalAgentRoles: ["hostile-agent", "shared-agent", "reporting-agent"],
    security: { reportsPerSecond: 100_000 },
  });
  tenant = await createQuietTenant(app);
  const run = await app.pulse.services.runs.start(tenant.tenantId, "shared-agent");
  plausible.runId = [run.id];
  const share = await app.pulse.services.shares.create(tenant.session, run.id, 600);
  const principal = await app.pulse.services.auth.authenticate(share.token, ["share"]);
  // Every feed then has an event to replay from the origin (`0-0`), so each subscription answers at once.
  await app.pulse.services.context.reset(tenant.tenantId);
  const base = { services: app.pulse.services, setSessionCookie: () => {}, clientIp: "127.0.0.1" };
  member = { ...base, session: tenant.session };
  viewer = { ...base, session: null, share: principal?.kind === "share" ? principal.share : null };
  expect(viewer.share).not.toBeNull();
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

/** How long a subscription may go without a first item before it is taken as waiting for live events. */
const FIRST_ITEM_WAIT_MS = 1_000;

/**
 * Calls one procedure in-process with the caller's real context; a subscription is read up to
 * its first item, or stopped (its signal aborted) when it has none yet: a filter that matches
 * nothing after `lastEventId` waits for live events, which is an answer too. A failure shows
 * in the call or the first `next()` either way.
 */
async function call(path: string, input: unknown): Promise<void> {
  const stop = new AbortController();
  const context =
    path.startsWith("share.") && !["share.create", "share.list", "share.revoke"].includes(path) ? viewer : member;
  const caller = createCaller(context, { signal: stop.signal }) as any;
  const procedure = path.split(".").reduce((at, key) => at[key], caller);
  const result = await procedure(input);
  // A started run holds its role; cancelling it lets the next input start one too.
  if (path === "agent.run") await member.services.runs.cancel(tenant.tenantId, (result as { runId: string }).runId);
  if (procedures[path]!._def.type !== "subscription") return;
  const feed = result as AsyncIterator<unknown>;
  let timer: NodeJS.Timeout | undefined;
  const waiting = new Promise<void>((resolve) => (timer = setTimeout(resolve, FIRST_ITEM_WAIT_MS)));
  try {
    await Promise.race([feed.next(), waiting]);
  } finally {
    clearTimeout(timer);
    stop.abort();
    await feed.return?.();
  }
}

describe("hostile strings in every procedure's input", () => {
  it("never answer INTERNAL_SERVER_ERROR", async () => {
    const paths = Object.keys(procedures).filter((path) => procedures[path]!._def.inputs.length > 0);
    expect(paths.length).toBeGreaterThan(15);
    const random = seeded(20_261_204);
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of paths) {
        const input = new HostileInputs(random, round).value(procedures[path]!._def.inputs[0]);
        let code = "OK";
        let message = "";
        try {
          await call(path, input);
        } catch (error) {
          code = error instanceof TRPCError ? error.code : "THROWN";
          message =
            error instanceof Error
              ? `${error.message} ${error.cause instanceof Error ? error.cause.message : ""}`
              : String(error);
        }
        log.attempt(
          PROCEDURE_ATTACK,
          "a client error or a result; never INTERNAL_SERVER_ERROR",
          code !== "INTERNAL_SERVER_ERROR" && code !== "THROWN",
          () => `${path} ${JSON.stringify(input).slice(0, 160)}: ${code} ${message.slice(0, 200)}`,
        );
      }
    }
    expect(log.get(PROCEDURE_ATTACK)?.examples).toEqual([]);
  });

  it("in an external agent's report body never answer 500", async () => {
    const random = seeded(20_261_205);
    const runs = app.pulse.services.runs;
    const started = async () => {
      const run = await runs.start(tenant.tenantId, "reporting-agent");
      expect((await postRunEvent(app, run.id, run.reportToken, { type: "agent:active" })).status).toBe(202);
      return run;
    };
    let run = await started();
    for (let round = 0; round < ROUNDS * 8; round++) {
      const body = new HostileInputs(random, round).value(pick(random, reportBodySchema.options)) as { type: string };
      const { status, text } = await postRunEvent(app, run.id, run.reportToken, body);
      log.attempt(
        REPORT_ATTACK,
        "202 or a 4xx naming the field; never 500",
        status < 500,
        () => `${JSON.stringify(body).slice(0, 160)}: ${status} ${text.slice(0, 200)}`,
      );
      // A report that ended the run leaves nothing for the next ones to report to.
      if (status === 202 && (body.type === "agent:completed" || body.type === "agent:failed")) {
        // A failure that will be retried leaves the run queued for its next attempt.
        if ((await runs.get(tenant.tenantId, run.id)).status === "queued") await runs.cancel(tenant.tenantId, run.id);
        run = await started();
      }
    }
    expect(log.get(REPORT_ATTACK)?.examples).toEqual([]);
  });

  it("in the address answer 400 or 404, never 500", async () => {
    const paths = [
      "/api/trpc/agent.get%E0%A4%A",
      "/api/trpc/agent.get?input=%E0%A4%A",
      "/api/trpc/%",
      "/api/runs/%E0%A4%A/events",
      "/runs/%E0%A4%A",
      "/%",
      "/shared/%E0%A4%A",
    ];
    for (const path of paths) {
      const res = await fetch(`${app.baseUrl}${path}`, {
        method: path.includes("/api/runs/") ? "POST" : "GET",
        headers: { authorization: `Bearer ${tenant.token}` },
      });
      await res.arrayBuffer();
      // The report endpoint checks its token first (401): any client error will do, never a 500.
      log.attempt(
        ADDRESS_ATTACK,
        "a 4xx (400 or 404 for pages); never 500",
        res.status >= 400 && res.status < 500,
        () => `${path}: ${res.status}`,
      );
    }
    expect(log.get(ADDRESS_ATTACK)?.examples).toEqual([]);
  });
});
