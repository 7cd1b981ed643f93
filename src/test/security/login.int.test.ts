import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createPulseServer, TRPC_PATH } from "../../server/http-server";
import { createLogger } from "../../server/logger";
import { createQuietTenant, startTestPulse, type TestPulse } from "../harness";
import { AttackLog } from "./security-kit";

/**
 * Passwords and sign-in: argon2id hashes, sign-in limited per account and per address,
 * session cookies httpOnly and SameSite, and cookie-authenticated mutations refused from
 * other origins.
 */

const LONG = process.env.PULSE_LONG === "1";
// The long run (`npm run test:security`) scales every count up; its tests get time to match.
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("login", LONG);
const PASSWORD = "correct horse battery";
const PER_ACCOUNT = 3;
const PER_IP = 8;
const WINDOW_SECONDS = 600;

let app: TestPulse;
beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    auth: { login: { maxPerAccount: PER_ACCOUNT, maxPerIp: PER_IP, windowSeconds: WINDOW_SECONDS } },
    security: { trustProxy: true, allowedOrigins: ["https://pulse.example.com"] },
  });
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

/** One raw tRPC HTTP call, as a browser form or a script would send it. */
async function call(path: string, input: unknown, headers: Record<string, string> = {}, target = app) {
  const res = await fetch(`${target.baseUrl}${TRPC_PATH}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(input),
  });
  const body = (await res.json()) as {
    result?: { data: any };
    error?: { message: string; data: { code: string; retryAfterSeconds: number | null } };
  };
  return {
    status: res.status,
    body,
    cookie: res.headers.get("set-cookie"),
    retryAfter: res.headers.get("retry-after"),
  };
}

/**
 * A sign-in refused for its rate, saying when to come back: within the window, as
 * `data.retryAfterSeconds` and as the same `Retry-After`.
 */
function refusedUntilLater(answer: Awaited<ReturnType<typeof call>>): boolean {
  const data = answer.body.error?.data;
  return (
    answer.status === 429 &&
    data?.code === "TOO_MANY_REQUESTS" &&
    data.retryAfterSeconds !== null &&
    data.retryAfterSeconds >= 1 &&
    data.retryAfterSeconds <= WINDOW_SECONDS &&
    answer.retryAfter === String(data.retryAfterSeconds)
  );
}

describe("passwords", () => {
  it("are stored as argon2id hashes, never as themselves", async () => {
    const tenant = await createQuietTenant(app);
    const user = await app.pulse.services.db.user.findUniqueOrThrow({ where: { id: tenant.userId } });
    expect(user.passwordHash).toMatch(/^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$/);
    expect(user.passwordHash).not.toContain(PASSWORD);
  });
});

describe("sign-in limits", () => {
  it("refuse an account's sign-ins beyond its limit, even with the right password, from any address", async () => {
    const tenant = await createQuietTenant(app);
    const from = (n: number) => ({ "x-forwarded-for": `10.1.${n}.1` });
    for (let i = 0; i < PER_ACCOUNT; i++) {
      const wrong = await call("auth.login", { email: tenant.email, password: "not the password" }, from(i));
      expect(wrong.body.error?.data.code).toBe("UNAUTHORIZED");
    }
    // All at once, as a guesser would: each refusal is held a second (see `holdRateRefusal`).
    const rounds = LONG ? 200 : 10;
    const guesses = await Promise.all(
      Array.from({ length: rounds }, (_, i) =>
        call(
          "auth.login",
          { email: tenant.email, password: i === rounds - 1 ? PASSWORD : `guess-${i}` },
          from(100 + i),
        ),
      ),
    );
    for (const guess of guesses) {
      log.attempt(
        "Password guessing on one account",
        "TOO_MANY_REQUESTS after the per-account limit, even for the right password, saying when to retry",
        refusedUntilLater(guess),
        () => `${guess.status} retry-after ${guess.retryAfter} ${JSON.stringify(guess.body.error)}`,
      );
    }
    const last = await call("auth.login", { email: tenant.email, password: PASSWORD }, from(999));
    expect(last.status).toBe(429);
    expect(last.body.error?.message).toMatch(/^too many sign-in attempts; try again in \d+ minutes?$/);
    // Another account is not affected.
    const other = await createQuietTenant(app);
    expect((await call("auth.login", { email: other.email, password: PASSWORD }, from(5))).status).toBe(200);
    expect(log.failures()).toEqual([]);
  });

  it("refuse an address's sign-ins and registrations beyond its limit, whichever accounts they try", async () => {
    const address = { "x-forwarded-for": `10.2.${Math.floor(Math.random() * 250)}.7` };
    // Spread over accounts so that no account reaches its own limit first.
    const accounts = await Promise.all([1, 2, 3, 4].map(() => createQuietTenant(app)));
    for (let i = 0; i < PER_IP; i++) {
      const attempt = await call(
        "auth.login",
        { email: accounts[i % 4]!.email, password: i < 4 ? "wrong password" : PASSWORD },
        address,
      );
      expect(attempt.status).not.toBe(429);
    }
    const rounds = LONG ? 200 : 10;
    const attempts = await Promise.all(
      Array.from({ length: rounds }, (_, i) =>
        i % 2 === 0
          ? call("auth.login", { email: `nobody-${i}@example.test`, password: "whatever1" }, address)
          : call(
              "auth.register",
              { email: `spray-${randomUUID()}@example.test`, password: PASSWORD, tenantName: "Spray" },
              address,
            ),
      ),
    );
    for (const attempt of attempts) {
      log.attempt(
        "Credential spraying from one address",
        "TOO_MANY_REQUESTS after the per-address limit (sign-in and registration), saying when to retry",
        refusedUntilLater(attempt),
        () => `${attempt.status} retry-after ${attempt.retryAfter} ${JSON.stringify(attempt.body.error)}`,
      );
    }
    // The right password for a fresh account from another address still works.
    const fresh = await createQuietTenant(app);
    expect(
      (await call("auth.login", { email: fresh.email, password: PASSWORD }, { "x-forwarded-for": "10.3.0.1" })).status,
    ).toBe(200);
    expect(log.failures()).toEqual([]);
  });

  it("give an unknown email and a wrong password the same answer", async () => {
    const tenant = await createQuietTenant(app);
    const wrong = await call(
      "auth.login",
      { email: tenant.email, password: "not the password" },
      { "x-forwarded-for": "10.4.0.1" },
    );
    const unknown = await call(
      "auth.login",
      { email: `nobody-${randomUUID()}@example.test`, password: "not the password" },
      { "x-forwarded-for": "10.4.0.2" },
    );
    expect(wrong.status).toBe(401);
    expect({ status: unknown.status, message: unknown.body.error?.message }).toEqual({
      status: wrong.status,
      message: wrong.body.error?.message,
    });
  });
});

describe("session cookies", () => {
  it("are httpOnly and SameSite=Lax, Secure when configured, and cleared on logout", async () => {
    const tenant = await createQuietTenant(app);
    const login = await call(
      "auth.login",
      { email: tenant.email, password: PASSWORD },
      { "x-forwarded-for": "10.5.0.1" },
    );
    expect(login.cookie).toMatch(/^pulse_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600$/);
    const token = login.body.result!.data.token as string;
    const logout = await call("auth.logout", {}, { authorization: `Bearer ${token}` });
    expect(logout.cookie).toBe("pulse_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");

    // The same Pulse behind a server configured for HTTPS.
    const https = createPulseServer({ pulse: app.pulse, logger: createLogger("silent"), secureCookies: true });
    await new Promise<void>((resolve) => https.server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (https.server.address() as { port: number }).port;
      const res = await fetch(`http://127.0.0.1:${port}${TRPC_PATH}/auth.login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: tenant.email, password: PASSWORD }),
      });
      expect(res.headers.get("set-cookie")).toMatch(/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure$/);
    } finally {
      await https.close();
    }
  });

  it("cannot carry a mutation from another origin's page (cross-site request forgery)", async () => {
    const tenant = await createQuietTenant(app);
    const cookie = `pulse_session=${encodeURIComponent(tenant.token)}`;
    const rounds = LONG ? 100 : 5;
    for (let i = 0; i < rounds; i++) {
      for (const origin of [
        "https://evil.example",
        "null",
        "http://pulse.example.com",
        "https://pulse.example.com.evil.example",
      ]) {
        const forged = await call("agent.runChain", {}, { cookie, origin });
        log.attempt(
          "Cookie-authenticated mutation from another origin",
          "403 before the procedure runs",
          forged.status === 403,
          () => `${origin}: ${forged.status}`,
        );
      }
    }
    expect((await app.pulse.services.runs.list(tenant.tenantId, { limit: 10 })).runs).toEqual([]);
    // The allowed origin, and API clients with a bearer token, are served.
    const allowed = await call("auth.logout", {}, { cookie, origin: "https://pulse.example.com" });
    expect(allowed.status).toBe(200);
    expect(log.failures()).toEqual([]);
  });
});
