import "server-only";
import type { TRPCError } from "@trpc/server";
import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { cache } from "react";
import { SESSION_COOKIE } from "../auth/session-cookie";
import { pageCaller } from "./page-caller";
import { filterParams, listInput, type RunListInput } from "../../lib/run-filter";
import { runListInput } from "../agents/run-search";
import type { z } from "zod";

/**
 * What server components read for the first paint, through the procedures (the router's
 * server-side caller with the page's session), so a page opened mid-run shows the truth at
 * once and reads exactly what the procedure would answer the browser.
 */
const api = cache(async () => pageCaller((await cookies()).get(SESSION_COOKIE)?.value));

/** The signed-in user, or null. */
export async function pageSession() {
  return (await api()).auth.me();
}

/** What the sign-in and registration pages may offer (registration, the demo account). */
export async function signInOptions() {
  return (await api()).auth.signInOptions();
}

/** The signed-in user, or a redirect to the sign-in page. */
export async function requireSession() {
  const user = await pageSession();
  if (!user) redirect("/login");
  return user;
}

/**
 * The tenant's runs as a subscription starts from: the polling twin's first page, whose id
 * is read before its snapshot (events after it may already be in the snapshot, and their
 * `seq` lets the client skip them).
 */
async function agentSnapshot() {
  const page = await (await api()).agent.events({ limit: 1 });
  const first = page.items[0]?.item;
  if (first?.type !== "snapshot") throw new Error("agent.events without a cursor answers with a snapshot");
  return { id: page.cursor, runs: first.snapshot.runs };
}

export async function dashboardData() {
  const caller = await api();
  const [{ id, runs }, recent, durations, chain, roles, chains] = await Promise.all([
    agentSnapshot(),
    caller.agent.list({ limit: 20 }),
    caller.agent.durations(),
    caller.agent.latestChain(),
    caller.agent.roles(),
    caller.agent.chains(),
  ]);
  return { id, runs, recent: recent.runs, durations, chain, roles, chains };
}

/**
 * The run and its agent's title, for the run page; null when the tenant has no such run (or
 * the id is not one). Any other failure (the database unavailable) is thrown, for the error
 * page to say so: a run that exists is never shown as "not found".
 */
export async function runData(runId: string) {
  const caller = await api();
  const [run, roles] = await Promise.all([caller.agent.get({ runId }).catch(unlessMissing), caller.agent.roles()]);
  if (!run) return null;
  const role = roles.find((r) => r.role === run.agentRole);
  return { run, title: role?.title ?? run.agentRole, external: role?.external === true };
}

/**
 * NOT_FOUND, or BAD_REQUEST for an id that cannot be one, is null. Told by its code, not by
 * `instanceof`: the caller's errors come from the server's copy of tRPC, not the pages' bundle.
 */
function unlessMissing(error: unknown): null {
  const code = (error as Partial<Pick<TRPCError, "code">> | null)?.code;
  if (code === "NOT_FOUND" || code === "BAD_REQUEST") return null;
  throw error;
}

/** How many runs the runs page shows at a time. */
export const RUNS_PAGE_SIZE = 25;

/**
 * The runs page's first page for the filters in its URL. A filter that does not parse is
 * left out and named in `problems`, rather than failing the page.
 */
export async function runsPageData(search: Record<string, string | string[] | undefined>) {
  const params = filterParams(search);
  const cursor = [search.cursor].flat()[0] || undefined;
  let input: Record<string, unknown> = { ...listInput(params), ...(cursor ? { cursor } : {}), limit: RUNS_PAGE_SIZE };
  let parsed = runListInput.safeParse(input);
  const problems = parsed.success ? [] : [...new Set(parsed.error.issues.map((issue) => String(issue.path[0])))];
  if (!parsed.success) {
    input = Object.fromEntries(Object.entries(input).filter(([key]) => !problems.includes(key)));
    parsed = runListInput.safeParse(input);
  }
  const caller = await api();
  const [page, roles] = await Promise.all([
    // The procedure parses the input again: it gets the filters' text, as the browser sends it.
    caller.agent.list(parsed.success ? (input as z.input<typeof runListInput>) : { limit: RUNS_PAGE_SIZE }),
    caller.agent.roles(),
  ]);
  const kept = input as RunListInput;
  return { params, input: kept, cursor: kept.cursor, problems, page, roles };
}

export async function contextPageData() {
  const caller = await api();
  // The runs' id comes first, so it is no newer than the context file's snapshot either.
  const { id, runs } = await agentSnapshot();
  const [context, durations, chain, roles, chains] = await Promise.all([
    caller.context.events({ limit: 1 }),
    caller.agent.durations(),
    caller.agent.latestChain(),
    caller.agent.roles(),
    caller.agent.chains(),
  ]);
  const first = context.items[0]?.item;
  if (first?.type !== "snapshot") throw new Error("context.events without a cursor answers with a snapshot");
  return { id, runs, context: first.snapshot.context, durations, chain, roles, chains };
}
