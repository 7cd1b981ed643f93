import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/logger";
import {
  collect,
  connectClient,
  eventually,
  fastDemoAgents,
  registerTenant,
  startTestPulse,
  type TestPulse,
} from "../harness";
import { httpClient, postRunEvent } from "./security-kit";

/**
 * Tokens are bearer secrets: at every log level, trace included, no line Pulse writes holds
 * a session, socket, share or report token, whichever way the token arrived (bearer header,
 * connectionParams, a report, the path of an old share link).
 */

const lines: string[] = [];
const captured = new Writable({
  write(chunk: Buffer, _encoding, done) {
    lines.push(...chunk.toString().split("\n").filter(Boolean));
    done();
  },
});

let app: TestPulse;
beforeAll(async () => {
  app = await startTestPulse({
    logger: createLogger("trace", "pulse", captured),
    agents: fastDemoAgents(),
    externalAgentRoles: ["logged-agent"],
  });
});
afterAll(async () => {
  await app?.close();
});

/** The parts of a JWT that would give it away: the whole token and its signature. */
const secretParts = (token: string) => [token, token.split(".").at(-1)!];

describe("logs at trace level", () => {
  it("hold no session, socket, share or report token", async () => {
    const tenant = await registerTenant(app);
    const member = httpClient(app, tenant.token);
    const { token: socketToken } = await member.auth.socketToken.query();
    const { runId, reportToken } = await member.agent.run.mutate({ agentRole: "logged-agent" });
    if (!reportToken) throw new Error("a run of an external role gets a report token");
    const share = await member.share.create.mutate({ runId });
    expect(share.path).toBe(`/share#${share.token}`);

    // Each token used the way clients use it, and misused the ways a log might catch it.
    expect((await postRunEvent(app, runId, reportToken, { type: "agent:active" })).status).toBe(202);
    expect(
      (await postRunEvent(app, runId, reportToken, { type: "agent:log", level: "info", message: "logged" })).status,
    ).toBe(202);
    expect((await postRunEvent(app, "another-run", reportToken, { type: "agent:active" })).status).toBe(404);
    expect((await postRunEvent(app, runId, `${reportToken}x`, { type: "agent:active" })).status).toBe(401);
    expect(await httpClient(app, share.token).share.run.query()).toMatchObject({ id: runId, title: "logged-agent" });
    // A link of the old form puts its token in the path, which the request log leaves out.
    expect((await fetch(`${app.baseUrl}/shared/${share.token}`)).status).toBe(404);
    expect(
      (
        await fetch(`${app.baseUrl}/api/trpc/share.run?input=${encodeURIComponent(JSON.stringify(share.token))}`, {
          headers: { authorization: `Bearer ${share.token}x` },
        })
      ).status,
    ).toBe(401);
    for (const token of [socketToken, share.token, `${tenant.token}x`]) {
      const client = connectClient(app, token);
      const feed = collect((h) =>
        token === share.token ? client.trpc.share.onRun.subscribe({}, h) : client.trpc.agent.onStatus.subscribe({}, h),
      );
      await eventually(
        () => feed.items.length + feed.errors.length,
        (n) => n > 0,
        "an answer on the socket",
      );
      feed.unsubscribe();
      await client.close();
    }
    await member.share.revoke.mutate({ shareId: share.shareId });
    await member.auth.logout.mutate();

    // Trace level was on, and the requests above were logged.
    expect(lines.filter((line) => line.includes('"msg":"http request"')).length).toBeGreaterThan(5);
    const tokens = { session: tenant.token, socket: socketToken, share: share.token, report: reportToken };
    const leaks = Object.entries(tokens).flatMap(([kind, token]) =>
      secretParts(token).flatMap((part) =>
        lines.filter((line) => line.includes(part)).map((line) => `${kind}: ${line.slice(0, 300)}`),
      ),
    );
    expect(leaks).toEqual([]);
    expect(
      lines.some((line) => line.includes('"msg":"http request"') && line.includes('"path":"/shared/[redacted]"')),
    ).toBe(true);
  });
});
