import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { TRPC_PATH } from "../../server/http-server";
import { appRouter } from "../../server/trpc/root";
import { createQuietTenant, startTestPulse, type TestPulse } from "../harness";
import { AttackLog, rawSocket, type RawSocket } from "./security-kit";

/**
 * Every procedure input is a zod schema with bounds (string lengths, number ranges, array
 * and record sizes, enums), and a bad input is BAD_REQUEST with a message naming the field.
 */

const LONG = process.env.PULSE_LONG === "1";
// The long run (`npm run test:security`) scales every count up; its tests get time to match.
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("input-bounds", LONG);

type AnyProcedure = { _def: { type: "query" | "mutation" | "subscription"; inputs: unknown[] } };
const procedures = (appRouter as unknown as { _def: { procedures: Record<string, AnyProcedure> } })._def.procedures;

/** Paths inside a zod schema that accept unbounded input; zod 4's definitions are read directly. */
function unbounded(schema: any, path: string): string[] {
  const def = schema?._zod?.def;
  if (!def) return [`${path || "input"}: not a zod schema`];
  const here = path || "input";
  const checks: any[] = (def.checks ?? []).map((c: any) => c._zod.def);
  const has = (check: string) => checks.some((c) => c.check === check);
  switch (def.type) {
    case "object":
      return Object.entries(def.shape).flatMap(([key, value]) => unbounded(value, path ? `${path}.${key}` : key));
    case "string": {
      if (has("max_length") || has("length_equals")) return [];
      // A datetime's format fixes its length; an anchored pattern without open-ended repeats does too.
      if (def.format === "datetime") return [];
      const patterns = checks
        .filter((c) => c.check === "string_format" && c.format === "regex")
        .map((c) => c.pattern.source as string);
      if (patterns.some((p) => p.startsWith("^") && p.endsWith("$") && !/[*+]|\{\d+,\}/.test(p))) return [];
      return [`${here}: string without a maximum length`];
    }
    case "number":
      return has("greater_than") && has("less_than") ? [] : [`${here}: number without both bounds`];
    case "boolean":
    case "enum":
    case "literal":
    case "null":
    case "undefined":
      return [];
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "readonly":
    case "nonoptional":
    case "catch":
      return unbounded(def.innerType, path);
    case "pipe":
      return unbounded(def.in, path);
    case "array":
      return [
        ...(has("max_length") ? [] : [`${here}: array without a maximum length`]),
        ...unbounded(def.element, `${here}[]`),
      ];
    case "record":
      // The size bound of a record is a refinement (zod has no built-in one).
      return [
        ...(checks.some((c) => c.check === "custom") ? [] : [`${here}: record without a size bound`]),
        ...unbounded(def.keyType, `${here}{key}`),
        ...unbounded(def.valueType, `${here}{}`),
      ];
    case "union":
      return def.options.flatMap((o: unknown) => unbounded(o, path));
    default:
      return [`${here}: ${def.type} is not known to be bounded`];
  }
}

let app: TestPulse;
let token: string;
let shareToken: string;
let runId: string;
beforeAll(async () => {
  app = await startTestPulse({ runWorkers: false, externalAgentRoles: ["bounded-agent"] });
  const tenant = await createQuietTenant(app);
  token = tenant.token;
  const started = await app.pulse.services.runs.start(tenant.tenantId, "bounded-agent");
  runId = started.id;
  shareToken = (await app.pulse.services.shares.create(tenant.session, runId, 600)).token;
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

/** Out-of-bounds inputs for every procedure that takes input, and the field each must name. */
const BAD_INPUTS: Record<string, [unknown, string][]> = {
  "agent.onStatus": [
    [{ runId: "r".repeat(129) }, "runId"],
    [{ runId: "r\u0000" }, "runId"],
    [{ agentRole: "Not A Role" }, "agentRole"],
    [{ lastEventId: "1-1-1" }, "lastEventId"],
  ],
  "agent.events": [
    [{ limit: 0 }, "limit"],
    [{ limit: 501 }, "limit"],
    [{ cursor: "9".repeat(50) }, "cursor"],
    [{ limit: 1.5 }, "limit"],
  ],
  "agent.list": [
    [{ limit: 1_000 }, "limit"],
    [{ status: ["running"] }, "status"],
    [{ status: Array(6).fill("queued") }, "status"],
    [{ from: "yesterday" }, "from"],
    [{ to: "2026-01-01T00:00:00Z".padEnd(80, "0") }, "to"],
    [{ from: "0000-01-01T00:00:00Z" }, "from"],
    [{ to: "9999-12-31T23:59:59Z" }, "to"],
    [{ cursor: "yesterday" }, "cursor"],
    [{ cursor: `1:${"r".repeat(129)}` }, "cursor"],
    [{ q: "q".repeat(101) }, "q"],
    [{ q: "a\u0000" }, "q"],
    [{ origin: "anywhere" }, "origin"],
  ],
  "agent.history": [
    [{ days: 0 }, "days"],
    [{ days: 32 }, "days"],
    [{ days: 1.5 }, "days"],
    [{ utcOffsetMinutes: 841 }, "utcOffsetMinutes"],
    [{ utcOffsetMinutes: "540" }, "utcOffsetMinutes"],
  ],
  "agent.get": [
    [{ runId: "" }, "runId"],
    [{ runId: "r".repeat(129) }, "runId"],
    [{ runId: 42 }, "runId"],
    [{ runId: "r\u0000" }, "runId"],
    [{ runId: "r\nr" }, "runId"],
  ],
  "agent.logs": [
    [{ runId: "r", cursor: "c".repeat(129) }, "cursor"],
    [{ runId: "r", limit: 501 }, "limit"],
  ],
  "agent.runChain": [
    [{ chain: "Not A Chain" }, "chain"],
    [{ chain: "c".repeat(70) }, "chain"],
    [{ chain: "setup", input: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 1])) }, "input"],
    [{ chain: "setup", input: { k: "v".repeat(2_001) } }, "input.k"],
  ],
  "agent.run": [
    [{ agentRole: "x".repeat(70) }, "agentRole"],
    [{ agentRole: "ticker", input: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 1])) }, "input"],
    [{ agentRole: "ticker", input: { k: "v".repeat(2_001) } }, "input.k"],
    [{ agentRole: "ticker", input: { ["k".repeat(65)]: 1 } }, "input"],
    [{ agentRole: "ticker", input: { nested: { deep: true } } }, "input.nested"],
    // PostgreSQL cannot store U+0000, in text or in JSON.
    [{ agentRole: "ticker", input: { k: "a\u0000b" } }, "input.k"],
    [{ agentRole: "ticker", input: { ["k\u0000"]: 1 } }, "input"],
    // Nor a lone surrogate in JSON.
    [{ agentRole: "ticker", input: { k: "a\uD800" } }, "input.k"],
    [{ agentRole: "ticker", input: { ["\uDC00k"]: 1 } }, "input"],
  ],
  "agent.cancel": [
    [{ runId: "r".repeat(129) }, "runId"],
    [{ runId: "\u0000" }, "runId"],
  ],
  "agent.retry": [[{}, "runId"]],
  "agent.runAgain": [[{}, "runId"]],
  "agent.output": [
    [{ runId: "r", before: -1 }, "before"],
    [{ runId: "r", after: 2 ** 60 }, "after"],
    [{ runId: "r", limit: 65_537 }, "limit"],
    [{ runId: "r", before: 2, after: 1 }, "after"],
  ],
  "context.onStatusChanged": [[{ lastEventId: "latest" }, "lastEventId"]],
  "context.events": [
    [{ limit: -1 }, "limit"],
    [{ cursor: "0" }, "cursor"],
  ],
  "context.approve": [
    [{ version: 0 }, "version"],
    [{ version: 1_000_001 }, "version"],
    [{ version: "1" }, "version"],
  ],
  "auth.register": [
    [{ email: "nope", password: "long enough", tenantName: "x" }, "email"],
    [{ email: "a@b.co", password: "short", tenantName: "x" }, "password"],
    [{ email: "a@b.co", password: "long enough", tenantName: "x".repeat(101) }, "tenantName"],
    [{ email: `${"a".repeat(250)}@b.co`, password: "long enough", tenantName: "x" }, "email"],
    [{ email: "a@b.co", password: "long enough", tenantName: "x\u0000" }, "tenantName"],
    [{ email: "a@b.co", password: "long enough", tenantName: "x\uD83D" }, "tenantName"],
    [{ email: "a@b.co", password: "long\u0000enough", tenantName: "x" }, "password"],
  ],
  "auth.login": [
    [{ email: "a@b.co", password: "p".repeat(201) }, "password"],
    [{ email: "a@b.co", password: "" }, "password"],
  ],
  "share.create": [
    [{ runId: "r", expiresInMinutes: 0 }, "expiresInMinutes"],
    [{ runId: "r\u0000" }, "runId"],
    [{ runId: "r".repeat(129) }, "runId"],
    [{ runId: "r", expiresInMinutes: 1e9 }, "expiresInMinutes"],
  ],
  "share.list": [
    [{ runId: "r".repeat(129) }, "runId"],
    [{ runId: "r\u0000" }, "runId"],
    [{}, "runId"],
  ],
  "share.revoke": [
    [{ shareId: "s".repeat(65) }, "shareId"],
    [{ shareId: "\u0000" }, "shareId"],
    [{ shareId: "\uDFFF" }, "shareId"],
  ],
  "share.onRun": [[{ lastEventId: "x" }, "lastEventId"]],
  "share.events": [
    [{ cursor: "x" }, "cursor"],
    [{ limit: 10_000 }, "limit"],
  ],
  "share.output": [
    [{ before: 1.5 }, "before"],
    [{ limit: 0 }, "limit"],
  ],
  "share.logs": [
    [{ cursor: "c".repeat(129) }, "cursor"],
    [{ cursor: "c\u0000" }, "cursor"],
    [{ limit: 0 }, "limit"],
  ],
};

/** Sends one input to one procedure the way clients do, and returns the error it got (or null). */
async function send(
  socket: RawSocket,
  path: string,
  input: unknown,
  id: number,
): Promise<{ code?: string; message?: string } | null> {
  const type = procedures[path]!._def.type;
  // A member's procedures on links (create, list, revoke) take the session; the rest of `share.*` the link's token.
  const auth =
    path.startsWith("share.") && !["share.create", "share.list", "share.revoke"].includes(path) ? shareToken : token;
  if (type === "subscription") {
    const ws = path.startsWith("share.") ? shareSocket : socket;
    ws.request(id, "subscription", path, input);
    const answer = await ws.waitFor(
      (f) => f.json?.id === id && (Boolean(f.json.error) || f.json.result?.type === "data"),
      `${path} #${id}`,
    );
    return answer.json.error ? { code: answer.json.error.data.code, message: answer.json.error.message } : null;
  }
  const url = `${app.baseUrl}${TRPC_PATH}/${path}`;
  const res =
    type === "query"
      ? await fetch(`${url}?input=${encodeURIComponent(JSON.stringify(input))}`, {
          headers: { authorization: `Bearer ${auth}` },
        })
      : await fetch(url, {
          method: "POST",
          headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" },
          body: JSON.stringify(input),
        });
  const body = (await res.json()) as { error?: { message: string; data: { code: string } } };
  return body.error ? { code: body.error.data.code, message: body.error.message } : null;
}

let shareSocket: RawSocket;

describe("procedure inputs", () => {
  it("are zod schemas bounded everywhere: every string, number, array and record has a limit", () => {
    const problems = Object.entries(procedures).flatMap(([path, procedure]) =>
      procedure._def.inputs.flatMap((input) => unbounded(input, "").map((p) => `${path} ${p}`)),
    );
    expect(problems).toEqual([]);
    // Every procedure that takes input has out-of-bounds cases below.
    const withInput = Object.entries(procedures)
      .filter(([, p]) => p._def.inputs.length > 0)
      .map(([path]) => path)
      .sort();
    expect(Object.keys(BAD_INPUTS).sort()).toEqual(withInput);
  });

  it("in a request body over the size limit are refused (413) before any procedure runs", async () => {
    for (let i = 0; i < (LONG ? 200 : 5); i++) {
      const res = await fetch(`${app.baseUrl}${TRPC_PATH}/agent.run`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ agentRole: "bounded-agent", input: { note: "x".repeat(70 * 1024 + i) } }),
      });
      const text = await res.text();
      log.attempt(
        "HTTP body over the size limit",
        "413 PAYLOAD_TOO_LARGE",
        res.status === 413 && text.includes("PAYLOAD_TOO_LARGE"),
        () => `${res.status} ${text.slice(0, 200)}`,
      );
    }
    expect(log.failures()).toEqual([]);
    expect(
      (
        await app.pulse.services.runs.list(
          (await app.pulse.services.db.agentRun.findFirstOrThrow({ where: { id: runId } })).tenantId,
          { limit: 10 },
        )
      ).runs,
    ).toHaveLength(1);
  });

  it("out of bounds are BAD_REQUEST with a message naming the field, over HTTP and WebSocket", async () => {
    const socket = rawSocket(app);
    shareSocket = rawSocket(app);
    await Promise.all([socket.opened, shareSocket.opened]);
    socket.authenticate(token);
    shareSocket.authenticate(shareToken);
    let id = 0;
    try {
      for (let round = 0; round < (LONG ? 50 : 1); round++) {
        for (const [path, cases] of Object.entries(BAD_INPUTS)) {
          for (const [input, field] of cases) {
            const error = await send(socket, path, input, ++id);
            const ok =
              error?.code === "BAD_REQUEST" &&
              new RegExp(`(^|; )${field.replace(/[.[\]{}]/g, "\\$&")}[.:]`).test(error.message ?? "");
            log.attempt(
              "Out-of-bounds procedure input",
              "BAD_REQUEST naming the field",
              ok,
              () => `${path} ${JSON.stringify(input).slice(0, 80)}: ${JSON.stringify(error)}`,
            );
          }
        }
        // Pause between rounds so the socket's message rate never interferes.
        if (LONG) await new Promise((r) => setTimeout(r, 300));
      }
    } finally {
      socket.close();
      shareSocket.close();
    }
    expect(log.failures()).toEqual([]);
  });
});
