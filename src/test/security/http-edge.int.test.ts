import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createPulseServer, TRPC_PATH, type PulseServer } from "../../server/http-server";
import type { ServerSecurityOverrides } from "../../server/http/server-security";
import { createLogger } from "../../server/logger";
import { createQuietTenant, startTestPulse, type TestPulse } from "../harness";
import { AttackLog } from "./security-kit";

/**
 * tRPC over HTTP at the edge: which requests a session cookie may authenticate (cross-site
 * request forgery), the batch cap, the per-address and per-tenant call rates, and the
 * browser security headers on every answer.
 */

const LONG = process.env.PULSE_LONG === "1";
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("http-edge", LONG);
const MAX_BATCH = 8;
/** Calls per second (bursts of twice this) per address and per tenant: low, so a short loop passes them. */
const RATE = 1;

let app: TestPulse;
let address = 0;
/** A fresh client address per call unless a test names one, so one test's budget is not another's. */
const nextAddress = () => `10.77.${Math.floor(++address / 250)}.${(address % 250) + 1}`;

beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    security: { trustProxy: true, http: { maxBatch: MAX_BATCH } },
  });
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

/** A second server on the same Pulse, with other edge settings. */
async function serverWith(
  security: ServerSecurityOverrides,
  secureCookies = false,
): Promise<{ server: PulseServer; baseUrl: string }> {
  const server = createPulseServer({ pulse: app.pulse, logger: createLogger("silent"), secureCookies, security });
  await new Promise<void>((resolve) => server.server.listen(0, "127.0.0.1", resolve));
  return { server, baseUrl: `http://127.0.0.1:${(server.server.address() as AddressInfo).port}` };
}

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

/** One raw call as a browser page, a form or a script would send it. */
async function send(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: RequestInit["body"]; baseUrl?: string } = {},
): Promise<Answer> {
  const res = await fetch(`${init.baseUrl ?? app.baseUrl}${TRPC_PATH}/${path}`, {
    method: init.method ?? "POST",
    headers: { "x-forwarded-for": nextAddress(), ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Kept as text.
  }
  return { status: res.status, body, headers: res.headers };
}

const json = (input: unknown = {}) => ({ "content-type": "application/json", body: JSON.stringify(input) });
const cookieOf = (token: string) => `pulse_session=${encodeURIComponent(token)}`;
const runsOf = async (tenantId: string) => (await app.pulse.services.runs.list(tenantId, { limit: 100 })).runs.length;

describe("a session cookie", () => {
  it("authenticates nothing when an Authorization header is present, well-formed or not", async () => {
    const tenant = await createQuietTenant(app);
    const rounds = LONG ? 50 : 3;
    for (let i = 0; i < rounds; i++) {
      for (const authorization of [
        "Basic dXNlcjpwYXNzd29yZA==",
        "Bearer",
        "Bearer two words",
        "bearer-without-space",
        "Bearer not-a-token",
      ]) {
        const { body, ...headers } = json();
        const forged = await send("agent.runChain", {
          headers: { ...headers, cookie: cookieOf(tenant.token), authorization },
          body,
        });
        log.attempt(
          "Session cookie beside another Authorization header",
          "401 UNAUTHORIZED; the cookie never counts",
          forged.status === 401,
          () => `${authorization}: ${forged.status}`,
        );
      }
    }
    expect(await runsOf(tenant.tenantId)).toBe(0);
    // The header alone authenticates: the session's own bearer token works with or without the cookie.
    const { body, ...headers } = json();
    const own = await send("agent.runChain", {
      headers: { ...headers, cookie: cookieOf(tenant.token), authorization: `Bearer ${tenant.token}` },
      body,
    });
    expect(own.status).toBe(200);
    expect(log.failures()).toEqual([]);
  });

  it("never authenticates a body a form can send (multipart, urlencoded, text/plain), whatever its origin", async () => {
    const tenant = await createQuietTenant(app);
    const form = new FormData();
    form.set("x", "1");
    const bodies: { type?: string; body: RequestInit["body"] }[] = [
      { body: form },
      { type: "application/x-www-form-urlencoded", body: "x=1" },
      { type: "text/plain", body: "{}" },
      { type: "text/plain;charset=UTF-8", body: "{}" },
    ];
    const rounds = LONG ? 50 : 2;
    for (let i = 0; i < rounds; i++) {
      for (const origin of ["http://evil.example", app.baseUrl]) {
        for (const { type, body } of bodies) {
          const forged = await send("agent.runChain", {
            headers: { cookie: cookieOf(tenant.token), origin, ...(type ? { "content-type": type } : {}) },
            body,
          });
          log.attempt(
            "Form-encoded mutation (no preflight) with the session cookie",
            "415 before the procedure runs",
            forged.status === 415 && /application\/json/.test(forged.body?.error?.message),
            () => `${type ?? "multipart"} from ${origin}: ${forged.status}`,
          );
        }
      }
    }
    expect(await runsOf(tenant.tenantId)).toBe(0);
    expect(log.failures()).toEqual([]);
  });

  it("counts only from the request's own origin: scheme, host and port alike", async () => {
    const tenant = await createQuietTenant(app);
    const own = new URL(app.baseUrl);
    const foreign = [
      `https://${own.host}`, // same host and port, other scheme
      `http://${own.hostname}:${Number(own.port) === 1 ? 2 : 1}`, // same scheme and host, other port
      `http://localhost:${own.port}`,
      "http://evil.example",
      "null",
    ];
    const rounds = LONG ? 50 : 2;
    for (let i = 0; i < rounds; i++) {
      for (const origin of foreign) {
        for (const method of ["POST", "GET"] as const) {
          const path = method === "POST" ? "agent.runChain" : "agent.list";
          const { body, ...headers } = json();
          const forged = await send(path, {
            method,
            headers: { ...headers, cookie: cookieOf(tenant.token), origin },
            ...(method === "POST" ? { body } : {}),
          });
          log.attempt(
            "Cookie-authenticated call from another origin (scheme, host or port)",
            "403 before the procedure runs",
            forged.status === 403,
            () => `${method} from ${origin}: ${forged.status}`,
          );
        }
      }
    }
    expect(await runsOf(tenant.tenantId)).toBe(0);
    const { body, ...headers } = json();
    const same = await send("agent.runChain", {
      headers: { ...headers, cookie: cookieOf(tenant.token), origin: app.baseUrl },
      body,
    });
    expect(same.status).toBe(200);
    expect(log.failures()).toEqual([]);
  });

  it("knows its own origin behind a trusted proxy (X-Forwarded-Proto/-Host) and from COOKIE_SECURE", async () => {
    const tenant = await createQuietTenant(app);
    const proxied = {
      "x-forwarded-proto": "https",
      "x-forwarded-host": "pulse.example.com",
      cookie: cookieOf(tenant.token),
    };
    const call = (headers: Record<string, string>, baseUrl = app.baseUrl) =>
      send("auth.me", { method: "GET", headers, baseUrl });
    expect((await call({ ...proxied, origin: "https://pulse.example.com" })).status).toBe(200);
    expect((await call({ ...proxied, origin: "http://pulse.example.com" })).status).toBe(403);
    expect((await call({ ...proxied, origin: app.baseUrl })).status).toBe(403);

    // Without TRUST_PROXY the forwarded headers are the client's own words and count for nothing.
    const direct = await serverWith({});
    // COOKIE_SECURE: browsers reach it over HTTPS, whatever hop ends TLS.
    const secure = await serverWith({}, true);
    try {
      const directHost = new URL(direct.baseUrl).host;
      expect((await call({ ...proxied, origin: "https://pulse.example.com" }, direct.baseUrl)).status).toBe(403);
      expect((await call({ cookie: cookieOf(tenant.token), origin: direct.baseUrl }, direct.baseUrl)).status).toBe(200);
      expect(
        (await call({ cookie: cookieOf(tenant.token), origin: `https://${directHost}` }, direct.baseUrl)).status,
      ).toBe(403);
      const secureHost = new URL(secure.baseUrl).host;
      expect(
        (await call({ cookie: cookieOf(tenant.token), origin: `https://${secureHost}` }, secure.baseUrl)).status,
      ).toBe(200);
      expect((await call({ cookie: cookieOf(tenant.token), origin: secure.baseUrl }, secure.baseUrl)).status).toBe(403);
    } finally {
      await direct.server.close();
      await secure.server.close();
    }
  });
});

describe("HTTP batches", () => {
  const batch = (procedure: string, n: number) => `${Array.from({ length: n }, () => procedure).join(",")}?batch=1`;

  it(`are refused over ${MAX_BATCH} calls, GET and POST alike, before any procedure runs`, async () => {
    const tenant = await createQuietTenant(app);
    const authorization = `Bearer ${tenant.token}`;
    const input = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [i, {}])));
    for (const n of [MAX_BATCH + 1, 1_000]) {
      // Without input, as the reported 1,400-call GET was sent: each call takes its defaults.
      const get = await send(batch("agent.list", n), { method: "GET", headers: { authorization } });
      expect(get.status).toBe(400);
      expect(get.body.error.message).toBe(`batch: at most ${MAX_BATCH} calls per request (got ${n})`);
      const post = await send(batch("agent.runChain", n), {
        headers: { authorization, "content-type": "application/json" },
        body: input(n),
      });
      expect(post.status).toBe(400);
      expect(post.body.error.message).toBe(`batch: at most ${MAX_BATCH} calls per request (got ${n})`);
    }
    expect(await runsOf(tenant.tenantId)).toBe(0);
    // Commas escaped in the path are the same batch to tRPC, and to the cap.
    const escaped = await send(
      `${batch("agent.list", MAX_BATCH + 1).replaceAll(",", "%2C")}&input=${encodeURIComponent(input(MAX_BATCH + 1))}`,
      { method: "GET", headers: { authorization } },
    );
    expect(escaped.status).toBe(400);
  });

  it(`of up to ${MAX_BATCH} calls are served`, async () => {
    const tenant = await createQuietTenant(app);
    const input = JSON.stringify(Object.fromEntries(Array.from({ length: MAX_BATCH }, (_, i) => [i, {}])));
    const served = await send(`${batch("agent.list", MAX_BATCH)}&input=${encodeURIComponent(input)}`, {
      method: "GET",
      headers: { authorization: `Bearer ${tenant.token}` },
    });
    expect(served.status).toBe(200);
    expect(served.body).toHaveLength(MAX_BATCH);
  });
});

describe("HTTP call rates", () => {
  /** A server on the same Pulse whose budgets a short loop passes. */
  let limited: { server: PulseServer; baseUrl: string };
  beforeAll(async () => {
    limited = await serverWith({ trustProxy: true, http: { perIpPerSecond: RATE, perTenantPerSecond: RATE } });
  });
  afterAll(async () => {
    await limited?.server.close();
  });
  /** Rounds of parallel calls until one is refused; each round arrives at once, faster than any refill. */
  async function floodUntilRefused(
    call: () => Promise<Answer>,
  ): Promise<{ refused: Answer; served: number; sent: number }> {
    let served = 0;
    let sent = 0;
    for (let round = 0; round < 20; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => call()));
      sent += answers.length;
      served += answers.filter((a) => a.status === 200).length;
      const refused = answers.find((a) => a.status === 429);
      if (refused) return { refused, served, sent };
    }
    throw new Error(`no call refused after ${sent} calls (${served} served)`);
  }

  /**
   * A 429 as tRPC's client reads it: TOO_MANY_REQUESTS in `error.data`, with the wait both as
   * `data.retryAfterSeconds` and as the `Retry-After` header, the same number of seconds.
   */
  function saysWhenToRetry(answer: Answer): boolean {
    const data = answer.body?.error?.data;
    const header = answer.headers.get("retry-after");
    return (
      data?.code === "TOO_MANY_REQUESTS" &&
      typeof data.retryAfterSeconds === "number" &&
      data.retryAfterSeconds >= 1 &&
      header === String(data.retryAfterSeconds)
    );
  }

  it("refuse one address's calls past its budget with 429 and Retry-After, while another address is served", async () => {
    const flooder = nextAddress();
    const rounds = LONG ? 20 : 1;
    for (let i = 0; i < rounds; i++) {
      const { refused } = await floodUntilRefused(() =>
        send("auth.me", { method: "GET", headers: { "x-forwarded-for": flooder }, baseUrl: limited.baseUrl }),
      );
      log.attempt(
        "Query flood from one address",
        "429 with Retry-After, other addresses served",
        saysWhenToRetry(refused),
        () => `${refused.status} retry-after ${refused.headers.get("retry-after")} ${JSON.stringify(refused.body)}`,
      );
      const other = await send("auth.me", { method: "GET", baseUrl: limited.baseUrl });
      log.attempt(
        "Query flood from one address",
        "429 with Retry-After, other addresses served",
        other.status === 200,
        () => `other address: ${other.status}`,
      );
    }
    expect(log.failures()).toEqual([]);
  });

  it("refuse one tenant's calls past its budget from any address, while another tenant is served", async () => {
    const flooding = await createQuietTenant(app);
    const authorization = `Bearer ${flooding.token}`;
    const rounds = LONG ? 20 : 1;
    for (let i = 0; i < rounds; i++) {
      // Every call from a fresh address: only the tenant's budget can run out.
      const { refused } = await floodUntilRefused(() =>
        send("agent.list", {
          method: "GET",
          headers: { authorization, "x-forwarded-for": nextAddress() },
          baseUrl: limited.baseUrl,
        }),
      );
      log.attempt(
        "Query flood from one tenant over many addresses",
        "429 TOO_MANY_REQUESTS with Retry-After, other tenants served",
        saysWhenToRetry(refused),
        () =>
          `${refused.status} retry-after ${refused.headers.get("retry-after")} ${JSON.stringify(refused.body).slice(0, 300)}`,
      );
      // A tenant of its own each round: twenty rounds' calls would spend one tenant's own budget.
      const other = await createQuietTenant(app);
      const served = await send("agent.list", {
        method: "GET",
        headers: { authorization: `Bearer ${other.token}`, "x-forwarded-for": nextAddress() },
        baseUrl: limited.baseUrl,
      });
      log.attempt(
        "Query flood from one tenant over many addresses",
        "429 TOO_MANY_REQUESTS with Retry-After, other tenants served",
        served.status === 200,
        () => `other tenant: ${served.status}`,
      );
    }
    expect(log.failures()).toEqual([]);
  });

  it("answer at the edge (an address's rate) in the shape tRPC gives its own refusals (a tenant's rate)", async () => {
    const address = nextAddress();
    const { refused: atEdge } = await floodUntilRefused(() =>
      send("auth.me", { method: "GET", headers: { "x-forwarded-for": address }, baseUrl: limited.baseUrl }),
    );
    const tenant = await createQuietTenant(app);
    const { refused: byTrpc } = await floodUntilRefused(() =>
      send("agent.list", {
        method: "GET",
        headers: { authorization: `Bearer ${tenant.token}`, "x-forwarded-for": nextAddress() },
        baseUrl: limited.baseUrl,
      }),
    );
    // The tenant's refusal names its procedure; a refusal before tRPC reads the call cannot.
    const { path, ...trpcData } = byTrpc.body.error.data;
    expect(path).toBe("agent.list");
    expect(Object.keys(atEdge.body.error).sort()).toEqual(Object.keys(byTrpc.body.error).sort());
    expect(Object.keys(atEdge.body.error.data).sort()).toEqual(Object.keys(trpcData).sort());
    expect(atEdge.body.error).toMatchObject({ code: byTrpc.body.error.code, data: { code: "TOO_MANY_REQUESTS" } });
  });

  it("count each call of a batch", async () => {
    const address = nextAddress();
    // A batch as large as the burst spends it whole: the next call from that address waits.
    const input = JSON.stringify(Object.fromEntries(Array.from({ length: RATE * 2 }, (_, i) => [i, {}])));
    const path = `${Array.from({ length: RATE * 2 }, () => "auth.me").join(",")}?batch=1&input=${encodeURIComponent(input)}`;
    expect(
      (await send(path, { method: "GET", headers: { "x-forwarded-for": address }, baseUrl: limited.baseUrl })).status,
    ).toBe(200);
    const next = await send(path, { method: "GET", headers: { "x-forwarded-for": address }, baseUrl: limited.baseUrl });
    expect(next.status).toBe(429);
    expect(next.headers.get("retry-after")).toMatch(/^\d+$/);
  });
});

describe("security headers on API answers", () => {
  const expectFramingDenied = (headers: Headers) => {
    expect(headers.get("x-content-type-options")).toBe("nosniff");
    expect(headers.get("x-frame-options")).toBe("DENY");
    expect(headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(headers.get("referrer-policy")).toBe("strict-origin-when-cross-origin");
  };

  it("come with every answer: served, refused, not found, reports and metrics", async () => {
    const answers = [
      await send("auth.me", { method: "GET" }),
      await send("agent.list", { method: "GET" }),
      await send("agent.runChain", { headers: { "content-type": "text/plain" }, body: "{}" }),
      await send("nothing.here", { method: "GET" }),
    ];
    for (const path of ["/api/runs/x/events", "/metrics", "/no-such-page"]) {
      const res = await fetch(`${app.baseUrl}${path}`);
      answers.push({ status: res.status, body: await res.text(), headers: res.headers });
    }
    for (const answer of answers) {
      expectFramingDenied(answer.headers);
      expect(answer.headers.get("strict-transport-security")).toBeNull();
    }
  });

  it("add HSTS with COOKIE_SECURE, and let ALLOWED_ORIGINS frame the dashboard", async () => {
    const secure = await serverWith({}, true);
    const embedded = await serverWith({ allowedOrigins: ["https://portal.example.com"] });
    try {
      const hsts = await fetch(`${secure.baseUrl}${TRPC_PATH}/auth.me`);
      expectFramingDenied(hsts.headers);
      expect(hsts.headers.get("strict-transport-security")).toBe("max-age=31536000");
      const framed = await fetch(`${embedded.baseUrl}${TRPC_PATH}/auth.me`);
      expect(framed.headers.get("x-frame-options")).toBeNull();
      expect(framed.headers.get("content-security-policy")).toContain(
        "frame-ancestors 'self' https://portal.example.com",
      );
    } finally {
      await secure.server.close();
      await embedded.server.close();
    }
  });
});
