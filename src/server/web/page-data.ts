import "server-only";
import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { SETUP_CHAIN } from "../agents/chains";
import { agentTitle } from "../agents/define-agent";
import type { Session } from "../auth/auth-service";
import { SESSION_COOKIE } from "../auth/session-cookie";
import { filterParams, listInput, type RunListInput } from "../../lib/run-filter";
import { runListInput } from "../agents/run-search";
import { readAgentSnapshot, readContextSnapshot, readLatestChain } from "../events/snapshot";
import { servicesForPages } from "./page-services";

/**
 * What server components read for the first paint: the verified session and the tenant's
 * state straight from the database, so a page opened mid-run shows the truth at once.
 */
export async function pageSession(): Promise<Session | null> {
  const token = (await cookies()).get(SESSION_COOKIE)?.value;
  return servicesForPages().auth.verify(token);
}

/** The session, or a redirect to the sign-in page. */
export async function requireSession(): Promise<Session> {
  const session = await pageSession();
  if (!session) redirect("/login");
  return session;
}

export async function dashboardData(session: Session) {
  const { db, stream, runs } = servicesForPages();
  // The id is read before the snapshot: events after it may already be in the snapshot,
  // and their `seq` lets the client skip them.
  const id = await stream.lastId(session.tenantId);
  const [snapshot, recent, durations, chain] = await Promise.all([
    readAgentSnapshot({ db, stream }, session.tenantId),
    runs.list(session.tenantId, { limit: 20 }),
    runs.typicalDurations(session.tenantId),
    readLatestChain(db, session.tenantId),
  ]);
  return { id, runs: snapshot.runs, recent: recent.runs, durations, chain, roles: roleList() };
}

/**
 * The run and its agent's title, for the run page; null when the tenant has no such run.
 * Any other failure (the database unavailable) is thrown, for the error page to say so:
 * a run that exists is never shown as "not found".
 */
export async function runData(session: Session, runId: string) {
  const run = await servicesForPages().runs.find(session.tenantId, runId);
  if (!run) return null;
  const { agents, externalAgentRoles } = servicesForPages();
  return { run, title: agentTitle(agents, run.agentRole), external: externalAgentRoles.includes(run.agentRole) };
}

/** How many runs the runs page shows at a time. */
export const RUNS_PAGE_SIZE = 25;

/**
 * The runs page's first page for the filters in its URL. A filter that does not parse is
 * left out and named in `problems`, rather than failing the page.
 */
export async function runsPageData(session: Session, search: Record<string, string | string[] | undefined>) {
  const params = filterParams(search);
  const cursor = [search.cursor].flat()[0] || undefined;
  let input: Record<string, unknown> = { ...listInput(params), ...(cursor ? { cursor } : {}), limit: RUNS_PAGE_SIZE };
  let parsed = runListInput.safeParse(input);
  const problems = parsed.success ? [] : [...new Set(parsed.error.issues.map((issue) => String(issue.path[0])))];
  if (!parsed.success) {
    input = Object.fromEntries(Object.entries(input).filter(([key]) => !problems.includes(key)));
    parsed = runListInput.safeParse(input);
  }
  const page = await servicesForPages().runs.list(session.tenantId, parsed.success ? parsed.data : { limit: RUNS_PAGE_SIZE });
  const kept = input as RunListInput;
  return { params, input: kept, cursor: kept.cursor, problems, page, roles: roleList() };
}

export async function contextPageData(session: Session) {
  const { db, stream, runs } = servicesForPages();
  const id = await stream.lastId(session.tenantId);
  const [agents, context, durations, chain] = await Promise.all([
    readAgentSnapshot({ db, stream }, session.tenantId),
    readContextSnapshot(db, session.tenantId),
    runs.typicalDurations(session.tenantId),
    readLatestChain(db, session.tenantId),
  ]);
  return { id, runs: agents.runs, context: context.context, durations, chain, roles: roleList() };
}

/** The roles a dashboard shows a panel for: Pulse's own agents, then those run outside it. */
export interface RoleInfo {
  role: string;
  title: string;
  /** Run by an agent outside Pulse (EXTERNAL_AGENT_ROLES), which reports over HTTP. */
  external?: boolean;
  /** Part of the setup chain, which the chain card shows. */
  inChain?: boolean;
}

function roleList(): RoleInfo[] {
  const { agents, externalAgentRoles } = servicesForPages();
  return [
    ...agents.map((a) => ({ role: a.role, title: a.title ?? a.role, inChain: (SETUP_CHAIN as readonly string[]).includes(a.role) })),
    ...externalAgentRoles.map((role) => ({ role, title: role, external: true })),
  ];
}
