import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { SESSION_COOKIE } from "../../server/auth/session-cookie";
import { TRPC_PATH } from "../../server/http-server";
import { createQuietTenant, startTestPulse, type TestPulse } from "../harness";

/**
 * A product's own pages calling Pulse from their origin (ALLOWED_ORIGINS): CORS preflights
 * and answers for listed origins only, bearer tokens without cookies, WebSocket upgrades.
 */

const PRODUCT = "https://app.product.example";
const STRANGER = "https://evil.example";

let app: TestPulse;
let token: string;
let sessionCookie: string;

beforeAll(async () => {
  app = await startTestPulse({ runWorkers: false, security: { allowedOrigins: [PRODUCT] } });
  const tenant = await createQuietTenant(app);
  token = tenant.token;
  sessionCookie = `${SESSION_COOKIE}=${encodeURIComponent(tenant.token)}`;
});
afterAll(async () => {
  await app?.close();
});

function preflight(origin: string, path = "agent.list") {
  return fetch(`${app.baseUrl}${TRPC_PATH}/${path}`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type, trpc-accept",
    },
  });
}

/** Opens a socket as a page of `origin` would; resolves with 101 or the refusal's status. */
function upgradeStatus(origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${app.wsUrl}`, { origin });
    socket.once("open", () => {
      socket.close();
      resolve(101);
    });
    socket.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      socket.terminate();
    });
    socket.once("error", reject);
  });
}

describe("cross-origin calls", () => {
  it("answer a listed origin's preflight with what its tRPC client sends, and refuse any other origin's", async () => {
    const listed = await preflight(PRODUCT);
    expect(listed.status).toBe(204);
    expect(listed.headers.get("access-control-allow-origin")).toBe(PRODUCT);
    expect(listed.headers.get("access-control-allow-methods")).toContain("POST");
    expect(listed.headers.get("access-control-allow-headers")).toBe("authorization, content-type, trpc-accept");
    expect(Number(listed.headers.get("access-control-max-age"))).toBeGreaterThan(0);
    expect(listed.headers.get("vary")).toContain("Origin");
    // Never credentials: a cross-origin page's cookie is neither sent nor read.
    expect(listed.headers.get("access-control-allow-credentials")).toBeNull();

    const stranger = await preflight(STRANGER);
    expect(stranger.status).toBe(403);
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("let a listed origin read an answer to a bearer token's call; another origin's page gets no allowance", async () => {
    const call = (origin: string) =>
      fetch(`${app.baseUrl}${TRPC_PATH}/auth.me`, { headers: { origin, authorization: `Bearer ${token}` } });
    const listed = await call(PRODUCT);
    expect(listed.status).toBe(200);
    expect(listed.headers.get("access-control-allow-origin")).toBe(PRODUCT);
    expect(((await listed.json()) as { result: { data: { tenantId: string } } }).result.data.tenantId).toBeTruthy();

    const stranger = await call(STRANGER);
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("keep a cookie from another origin than those listed refused, with no allowance either", async () => {
    const res = await fetch(`${app.baseUrl}${TRPC_PATH}/auth.me`, {
      headers: { origin: STRANGER, cookie: sessionCookie },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("open the WebSocket for a listed origin's page and refuse another's", async () => {
    expect(await upgradeStatus(PRODUCT)).toBe(101);
    expect(await upgradeStatus(STRANGER)).toBe(403);
  });
});

/** Opens an event stream of `context.onStatusChanged` as an EventSource of a page of `origin` would, token in `connectionParams`. */
async function eventStream(origin: string) {
  const abort = new AbortController();
  const params = encodeURIComponent(JSON.stringify({ token }));
  const res = await fetch(
    `${app.baseUrl}${TRPC_PATH}/context.onStatusChanged?input=%7B%7D&connectionParams=${params}`,
    {
      headers: { origin, accept: "text/event-stream" },
      signal: abort.signal,
    },
  );
  let text = "";
  const reader = res.body!.getReader();
  while (!text.includes("event: connected")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  abort.abort();
  return { res, text };
}

describe("cross-origin server-sent events", () => {
  it("stream to a listed origin's page, which may read them; another origin's page gets no allowance to read", async () => {
    const listed = await eventStream(PRODUCT);
    expect(listed.res.status).toBe(200);
    expect(listed.res.headers.get("content-type")).toContain("text/event-stream");
    expect(listed.res.headers.get("access-control-allow-origin")).toBe(PRODUCT);
    expect(listed.text).toContain("event: connected");
    const stranger = await eventStream(STRANGER);
    expect(stranger.res.headers.get("access-control-allow-origin")).toBeNull();
  });
});
