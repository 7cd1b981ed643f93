import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { AgentEventInput } from "../../server/events/schema";
import { TRPC_PATH } from "../../server/http-server";
import { appRouter } from "../../server/trpc/root";
import { createQuietTenant, eventually, startTestPulse, type TestPulse } from "../harness";
import { AttackLog, rawSocket, type RawSocket } from "./security-kit";

/**
 * The canary test of tenant isolation. Tenant B publishes uniquely marked events (progress
 * messages, output, logs, step names, errors, its context file); meanwhile every procedure
 * (each subscription, query and mutation, the HTTP report endpoint, share links) is driven
 * as tenant A with B's run ids, event ids, log ids, context versions and share ids, and as
 * no one at all. No marker may ever reach A or the anonymous caller, and every foreign id
 * must be answered exactly like one that does not exist.
 */

const LONG = process.env.PULSE_LONG === "1";
// The long run (`npm run test:security`) scales every count up; its tests get time to match.
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("canary", LONG);
const CANARIES = LONG ? 10_000 : 300;
const ROUNDS = LONG ? 250 : 12;
const SALT = randomUUID().slice(0, 8);
const MARK = `CANARY-${SALT}-`;
const canary = (n: number) => `${MARK}${n}`;
const VICTIM_ROLE = "canary-agent";
const PROBE_ROLE = "probe-agent";

type Procedures = Record<string, { _def: { type: "query" | "mutation" | "subscription" } }>;
const procedures = (appRouter as unknown as { _def: { procedures: Procedures } })._def.procedures;

let app: TestPulse;
beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    externalAgentRoles: [VICTIM_ROLE, PROBE_ROLE],
    // The attacker's sockets send far more than a browser would, and views its share link far
    // more often than its viewers may; the rate limits have their own tests.
    security: { ws: { messagesPerSecond: 100_000, maxSubscriptions: 1_000 }, reportsPerSecond: 100_000 },
    auth: { shareViewsPerSecond: 100_000 },
  });
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

/** Every answer the attacker or the anonymous caller received, as text, checked for markers. */
const received: string[] = [];
const leaks = () => received.filter((text) => text.includes(MARK));

async function call(
  path: string,
  input: unknown,
  token: string | null,
): Promise<{ code: string | null; text: string }> {
  const type = procedures[path]!._def.type;
  const url = `${app.baseUrl}${TRPC_PATH}/${path}`;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const res =
    type === "query"
      ? await fetch(`${url}?input=${encodeURIComponent(JSON.stringify(input ?? null))}`, { headers })
      : await fetch(url, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify(input ?? null),
        });
  const text = await res.text();
  received.push(text);
  const json = JSON.parse(text) as { error?: { data: { code: string } } };
  return { code: json.error?.data.code ?? null, text };
}

async function report(
  runId: string,
  token: string | null,
  body: unknown,
  record = true,
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${app.baseUrl}/api/runs/${encodeURIComponent(runId)}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (record) received.push(text);
  return { status: res.status, text };
}

let nextId = 1;
/** A subscription request on a raw socket; resolves with the first data or error frame. */
async function subscribe(socket: RawSocket, path: string, input: unknown, lastEventId?: string) {
  const id = nextId++;
  socket.request(id, "subscription", path, input, lastEventId);
  const answer = await socket.waitFor(
    (f) => f.json?.id === id && (Boolean(f.json.error) || f.json.result?.type === "data"),
    `${path} #${id}`,
  );
  if (answer.json.result) socket.send({ id, method: "subscription.stop" });
  return { code: (answer.json.error?.data?.code as string | undefined) ?? null, text: answer.text };
}

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;

describe("tenant isolation under canaries", () => {
  it(
    `no marker of tenant B's ${CANARIES} canary events reaches tenant A through any procedure, the report endpoint or a share link, nor anyone without a token`,
    async () => {
      const { services } = app.pulse;
      const victim = await createQuietTenant(app);
      const attacker = await createQuietTenant(app);

      // The attacker's own world: a run with a report token, a share link, a context file.
      const probe = await services.runs.start(attacker.tenantId, PROBE_ROLE);
      await report(probe.id, probe.reportToken, { type: "agent:active" });
      const attackerShare = await services.shares.create(attacker.session, probe.id, 3600);
      await services.context.reset(attacker.tenantId);
      await services.context.complete(attacker.tenantId, "# attacker's own context");

      // The attacker watches everything it may see while B publishes.
      const watcher = rawSocket(app);
      const shareWatcher = rawSocket(app);
      await Promise.all([watcher.opened, shareWatcher.opened]);
      watcher.authenticate(attacker.token);
      shareWatcher.authenticate(attackerShare.token);
      watcher.request("all", "subscription", "agent.onStatus", {});
      watcher.request("probe", "subscription", "agent.onStatus", { runId: probe.id });
      watcher.request("context", "subscription", "context.onStatusChanged", {});
      shareWatcher.request("share", "subscription", "share.onRun", {});
      await watcher.waitFor(
        (f) => f.json?.id === "context" && f.json.result?.type === "data",
        "the attacker's snapshots",
      );
      await shareWatcher.waitFor((f) => f.json?.id === "share" && f.json.result?.type === "data", "the share snapshot");

      // B publishes canaries: through the bus as its agents would, and some over HTTP.
      const victimRuns: { id: string; reportToken: string | null }[] = [];
      const victimShares: string[] = [];
      let planted = 0;
      const plant = async () => {
        const perRun = Math.ceil(CANARIES / (LONG ? 20 : 3));
        while (planted < CANARIES) {
          const run = await services.runs.start(victim.tenantId, VICTIM_ROLE, { input: { secret: canary(planted) } });
          victimRuns.push(run);
          victimShares.push((await services.shares.create(victim.session, run.id, 3600)).shareId);
          const base = {
            tenantId: victim.tenantId,
            runId: run.id,
            jobId: run.jobId,
            queue: run.queue,
            agentRole: VICTIM_ROLE,
            attempt: 1,
          };
          await services.bus.publish({ ...base, type: "agent:active", startedAt: new Date().toISOString() });
          for (let k = 0; k < perRun && planted < CANARIES; k++, planted++) {
            const mark = canary(planted);
            const events: AgentEventInput[] = [
              { ...base, type: "agent:progress", progress: k % 100, message: mark, phase: "running" },
              { ...base, type: "agent:output", chunk: mark },
              { ...base, type: "agent:log", level: "warn", message: mark },
              { ...base, type: "agent:step", stepId: `${run.id}:1:${planted}`, name: mark, status: "completed" },
            ];
            if (planted % 50 === 0) {
              // B's own report over HTTP; its answer is B's, not the attacker's.
              const answer = await report(
                run.id,
                run.reportToken,
                { type: "agent:log", level: "info", message: mark },
                false,
              );
              expect(answer.status).toBe(202);
            } else {
              await services.bus.publish(events[planted % events.length]!);
            }
          }
          const last = planted >= CANARIES;
          await services.bus.publish(
            last
              ? {
                  ...base,
                  type: "agent:failed",
                  error: canary(planted),
                  failedAt: new Date().toISOString(),
                  willRetry: false,
                }
              : { ...base, type: "agent:completed", completedAt: new Date().toISOString() },
          );
        }
        for (let v = 1; v <= 3; v++) await services.context.complete(victim.tenantId, `# ${canary(CANARIES + v)}`);
      };
      const planting = plant();

      // Meanwhile the attacker drives every procedure with B's identifiers, and so does no one.
      const attackSocket = rawSocket(app);
      const shareSocket = rawSocket(app);
      await Promise.all([attackSocket.opened, shareSocket.opened]);
      attackSocket.authenticate(attacker.token);
      shareSocket.authenticate(attackerShare.token);
      /** A fresh socket without a token for each call: such sockets are closed after a few seconds. */
      const anonymousSubscribe = async (path: string, input: unknown) => {
        const socket = rawSocket(app);
        await socket.opened;
        socket.send({ method: "connectionParams", data: {} });
        try {
          return await subscribe(socket, path, input);
        } finally {
          received.push(...socket.frames.map((f) => f.text));
          socket.close();
        }
      };
      const driven = new Set<string>();
      const foreign = "Tenant B's identifiers used by tenant A";
      const nobody = "Every procedure and the report endpoint without a token";
      const expectNotFound = (path: string, answer: { code: string | null; text: string }) => {
        driven.add(path);
        log.attempt(
          foreign,
          "NOT_FOUND exactly as for a missing id; no marker",
          answer.code === "NOT_FOUND" && !answer.text.includes(MARK),
          () => `${path}: ${answer.text.slice(0, 300)}`,
        );
      };
      const expectClean = (
        path: string,
        answer: { code: string | null; text: string },
        allowed: (string | null)[] = [null],
      ) => {
        driven.add(path);
        log.attempt(
          foreign,
          "only tenant A's own data; no marker",
          allowed.includes(answer.code) && !answer.text.includes(MARK),
          () => `${path}: ${answer.text.slice(0, 300)}`,
        );
      };

      for (let round = 0; round < ROUNDS; round++) {
        // Wait for a little of B's data to exist, then use whatever B has by now.
        await eventually(
          () => victimRuns.length,
          (n) => n > 0,
          "B's first run",
        );
        const runId = pick(victimRuns).id;
        const streamIds = (await services.stream.readAfter(victim.tenantId, "0-0", 200)).map((e) => e.id);
        const ownIds = new Set((await services.stream.readAfter(attacker.tenantId, "0-0", 10_000)).map((e) => e.id));
        // An id both streams happen to hold (same millisecond) is the attacker's own too; skip it.
        const eventId =
          streamIds.filter((id) => !ownIds.has(id)).at(-1 - (round % 5)) ?? streamIds[0] ?? `${Date.now()}-0`;
        const logId =
          (
            await services.db.runLog.findFirst({
              where: { tenantId: victim.tenantId },
              orderBy: { at: "desc" },
              select: { id: true },
            })
          )?.id ?? "none";
        const version = 2 + (round % 2);

        const a = attacker.token;
        expectNotFound("agent.get", await call("agent.get", { runId }, a));
        expectNotFound("agent.logs", await call("agent.logs", { runId }, a));
        expectNotFound("agent.logs", await call("agent.logs", { runId: probe.id, cursor: logId }, a));
        expectNotFound("agent.output", await call("agent.output", { runId }, a));
        expectNotFound("agent.events", await call("agent.events", { runId }, a));
        expectNotFound("agent.events", await call("agent.events", { cursor: eventId }, a));
        expectNotFound("agent.cancel", await call("agent.cancel", { runId }, a));
        expectNotFound("agent.retry", await call("agent.retry", { runId }, a));
        expectNotFound("agent.runAgain", await call("agent.runAgain", { runId }, a));
        expectNotFound("context.events", await call("context.events", { cursor: eventId }, a));
        expectNotFound("share.create", await call("share.create", { runId }, a));
        expectNotFound("share.revoke", await call("share.revoke", { shareId: pick(victimShares) }, a));
        expectNotFound("share.events", await call("share.events", { cursor: eventId }, attackerShare.token));
        expectNotFound("share.logs", await call("share.logs", { cursor: logId }, attackerShare.token));
        expectNotFound("agent.onStatus", await subscribe(attackSocket, "agent.onStatus", { runId }));
        expectNotFound("agent.onStatus", await subscribe(attackSocket, "agent.onStatus", {}, eventId));
        expectNotFound(
          "context.onStatusChanged",
          await subscribe(attackSocket, "context.onStatusChanged", {}, eventId),
        );
        expectNotFound("share.onRun", await subscribe(shareSocket, "share.onRun", {}, eventId));
        if (round % 2 === 0) expectNotFound("context.approve", await call("context.approve", { version }, a));

        const smuggled = { tenantId: victim.tenantId };
        expectClean("agent.list", await call("agent.list", { ...smuggled, limit: 100 }, a));
        expectClean("agent.latestChain", await call("agent.latestChain", smuggled, a));
        // Another tenant's run has no links to list, as a missing run has none.
        expectClean("share.list", await call("share.list", { runId }, a));
        expectClean("agent.events", await call("agent.events", { ...smuggled, cursor: "0-0", limit: 500 }, a));
        expectClean("agent.roles", await call("agent.roles", undefined, a));
        expectClean("agent.chains", await call("agent.chains", smuggled, a));
        expectClean("agent.durations", await call("agent.durations", undefined, a));
        expectClean("agent.history", await call("agent.history", { ...smuggled, days: 31 }, a));
        expectClean("agent.latestChain", await call("agent.latestChain", undefined, a));
        // B's run has links, but A is shown none of them.
        const links = await call("share.list", { runId }, a);
        expectClean("share.list", links);
        log.attempt(
          foreign,
          "only tenant A's own data; no marker",
          !victimShares.some((id) => links.text.includes(id)),
          () => `share.list: ${links.text.slice(0, 300)}`,
        );
        expectClean("context.get", await call("context.get", undefined, a));
        expectClean("context.events", await call("context.events", { ...smuggled, cursor: "0-0" }, a));
        expectClean("auth.me", await call("auth.me", undefined, a));
        expectClean("auth.signInOptions", await call("auth.signInOptions", smuggled, a));
        expectClean("auth.socketToken", await call("auth.socketToken", undefined, a));
        expectClean("share.run", await call("share.run", undefined, attackerShare.token));
        expectClean("share.events", await call("share.events", { cursor: "0-0" }, attackerShare.token));
        expectClean("share.logs", await call("share.logs", smuggled, attackerShare.token));
        expectClean("share.output", await call("share.output", smuggled, attackerShare.token));
        expectClean(
          "agent.onStatus",
          await subscribe(attackSocket, "agent.onStatus", { ...smuggled, agentRole: VICTIM_ROLE }),
        );
        expectClean("context.onStatusChanged", await subscribe(attackSocket, "context.onStatusChanged", smuggled));
        expectClean("share.onRun", await subscribe(shareSocket, "share.onRun", smuggled));

        // The report endpoint: the attacker's token on B's run, B's run named in the body, no token.
        const onVictim = await report(runId, probe.reportToken, {
          type: "agent:log",
          level: "info",
          message: "hijack",
        });
        log.attempt(
          "Tenant A's report token on tenant B's run",
          "404 run not found; nothing published",
          onVictim.status === 404 && !onVictim.text.includes(MARK),
          () => onVictim.text,
        );
        const named = await report(probe.id, probe.reportToken, {
          type: "agent:log",
          level: "info",
          message: "x",
          runId,
          tenantId: victim.tenantId,
        });
        log.attempt(
          "Tenant A's report token on tenant B's run",
          "400 naming the field; nothing published",
          named.status === 400 && !named.text.includes(MARK),
          () => named.text,
        );
        const anonymousReport = await report(runId, null, { type: "agent:log", level: "info", message: "x" });
        log.attempt(
          nobody,
          "401/UNAUTHORIZED; no marker",
          anonymousReport.status === 401 && !anonymousReport.text.includes(MARK),
          () => anonymousReport.text,
        );

        // No one: every procedure, with B's identifiers where it takes any.
        for (const [path, { _def }] of Object.entries(procedures)) {
          const input = {
            runId,
            cursor: eventId,
            version,
            shareId: pick(victimShares),
            email: victim.email,
            password: "not the password",
            tenantName: "x",
            agentRole: VICTIM_ROLE,
          };
          const answer =
            _def.type === "subscription" ? await anonymousSubscribe(path, input) : await call(path, input, null);
          const expected: Record<string, (code: string | null) => boolean> = {
            "auth.me": (code) => code === null && answer.text.includes('"data":null'),
            "auth.signInOptions": (code) => code === null,
            "auth.logout": (code) => code === null,
            "auth.register": (code) => code === "CONFLICT",
            // The wrong password for B's account soon meets the per-account sign-in limit.
            "auth.login": (code) => code === "UNAUTHORIZED" || code === "TOO_MANY_REQUESTS",
          };
          const publicOk = (expected[path] ?? ((code) => code === "UNAUTHORIZED"))(answer.code);
          log.attempt(
            nobody,
            "401/UNAUTHORIZED; no marker",
            publicOk && !answer.text.includes(MARK),
            () => `${path}: ${answer.text.slice(0, 300)}`,
          );
        }
      }

      // A mutation that creates: the smuggled tenant is ignored, the run is the attacker's.
      const created = await call(
        "agent.run",
        { agentRole: VICTIM_ROLE, tenantId: victim.tenantId, input: { tenantId: victim.tenantId } },
        attacker.token,
      );
      expectClean("agent.run", created);
      expect(JSON.parse(created.text).result.data.run.tenantId).toBe(attacker.tenantId);
      expectClean("agent.runChain", await call("agent.runChain", { tenantId: victim.tenantId }, attacker.token));
      expectClean(
        "auth.login",
        await call(
          "auth.login",
          { email: attacker.email, password: "correct horse battery", tenantId: victim.tenantId },
          null,
        ),
      );
      expectClean(
        "auth.register",
        await call("auth.register", { email: victim.email, password: "correct horse battery", tenantName: "x" }, null),
        ["CONFLICT"],
      );
      expectClean("auth.logout", await call("auth.logout", { tenantId: victim.tenantId }, null));

      await planting;
      // The attacker's live feeds are still live: its own event arrives after all of B's.
      await report(probe.id, probe.reportToken, { type: "agent:log", level: "info", message: "attacker's own line" });
      await watcher.waitFor(
        (f) => f.json?.id === "probe" && f.text.includes("attacker's own line"),
        "the attacker's own event",
      );
      await shareWatcher.waitFor(
        (f) => f.json?.id === "share" && f.text.includes("attacker's own line"),
        "the attacker's own event on the share link",
      );
      received.push(...watcher.frames.map((f) => f.text), ...shareWatcher.frames.map((f) => f.text));
      received.push(...attackSocket.frames.map((f) => f.text), ...shareSocket.frames.map((f) => f.text));
      for (const s of [watcher, shareWatcher, attackSocket, shareSocket]) s.close();

      // The canaries are real: B sees every one of them.
      const victimStream = await services.stream.readAfter(victim.tenantId, "0-0", CANARIES * 2 + 1_000);
      const seen = new Set(
        victimStream.flatMap((e) => JSON.stringify(e.event).match(new RegExp(`${MARK}\\d+`, "g")) ?? []),
      );
      expect(seen.size).toBeGreaterThanOrEqual(CANARIES);
      const leaked = leaks();
      for (let n = 0; n < CANARIES; n++)
        log.attempt(
          "Canary event planted in tenant B",
          "never reaches tenant A or an anonymous caller",
          !leaked.some((t) => t.includes(`${canary(n)}"`) || t.includes(`${canary(n)}\\`)),
        );

      expect(leaked.map((t) => t.slice(0, 300))).toEqual([]);
      expect(log.failures().map(({ attack, examples }) => ({ attack, examples }))).toEqual([]);
      // Every procedure of the router was driven with B's identifiers or as no one.
      expect([...driven].sort()).toEqual(Object.keys(procedures).sort());
    },
    LONG ? 900_000 : 180_000,
  );
});
