import type { RouterInputs } from "./trpc/types";

/**
 * The runs page's filters as they live in its URL (`/runs?q=…&status=failed&from=2026-12-01`),
 * so a filtered list can be reloaded, bookmarked and sent to a colleague.
 */
export interface RunFilterParams {
  /** The start of a run id, a role's name or title, or words of the last message or error. */
  q?: string;
  status?: string;
  role?: string;
  origin?: string;
  /** Whole days in UTC, as a date input gives them (YYYY-MM-DD); `to` is included. */
  from?: string;
  to?: string;
}

export type RunListInput = Exclude<RouterInputs["agent"]["list"], void | undefined>;

/** The status choices the page offers, and the statuses each stands for. */
export const STATUS_CHOICES = {
  running: ["queued", "active"],
  completed: ["completed"],
  failed: ["failed"],
  cancelled: ["cancelled"],
} as const satisfies Record<string, NonNullable<RunListInput["status"]>>;

const KEYS = ["q", "status", "role", "origin", "from", "to"] as const;

/** The filters of a URL's query, first value of each, empty ones left out. */
export function filterParams(search: Record<string, string | string[] | undefined>): RunFilterParams {
  const params: RunFilterParams = {};
  for (const key of KEYS) {
    const value = [search[key]].flat()[0]?.trim();
    if (value) params[key] = value;
  }
  return params;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The start of a UTC day as an ISO instant; what is not a date is passed on for the server to refuse. */
function dayStart(day: string, plusDays = 0): string {
  if (!DAY.test(day)) return day;
  const at = new Date(`${day}T00:00:00.000Z`);
  if (Number.isNaN(at.getTime())) return day;
  at.setUTCDate(at.getUTCDate() + plusDays);
  return at.toISOString();
}

/** `agent.list`'s input for these filters (unvalidated: the server checks it). */
export function listInput(params: RunFilterParams): Omit<RunListInput, "cursor" | "limit"> {
  const status = params.status ? (STATUS_CHOICES as Record<string, readonly string[]>)[params.status] : undefined;
  return {
    ...(params.q ? { q: params.q } : {}),
    ...(params.status ? { status: (status ?? [params.status]) as RunListInput["status"] } : {}),
    ...(params.role ? { agentRole: params.role } : {}),
    ...(params.origin ? { origin: params.origin as RunListInput["origin"] } : {}),
    ...(params.from ? { from: dayStart(params.from) } : {}),
    ...(params.to ? { to: dayStart(params.to, 1) } : {}),
  };
}

/** The runs page's address for these filters, from `cursor` on (the newest runs without one). */
export function runsHref(params: RunFilterParams, cursor?: string): string {
  const query = new URLSearchParams();
  for (const key of KEYS) if (params[key]) query.set(key, params[key]);
  if (cursor) query.set("cursor", cursor);
  const text = query.toString();
  return text ? `/runs?${text}` : "/runs";
}
