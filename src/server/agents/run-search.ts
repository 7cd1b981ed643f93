import { z } from "zod";
import { Prisma } from "../../generated/prisma/client";
import { agentRoleSchema, runStatusSchema, type RunStatus } from "../events/schema";
import { isoDateInput, text } from "../validation";

/**
 * Finding a tenant's runs: newest first, filtered, searched, a page at a time from a cursor.
 * The query walks the `(tenantId, queuedAt, id)` index backwards from the cursor and stops
 * when the page is full, so every page costs about the same however deep it is, and runs
 * that arrive while someone pages (they are newer than every cursor) never shift a page.
 */

/** Where a run came from: the setup chain, started by hand in Pulse, or run by an outside agent. */
export const RUN_ORIGINS = ["chain", "manual", "external"] as const;
export type RunOrigin = (typeof RUN_ORIGINS)[number];

/** The last run of a page, as the next page starts after it: newest first by (queuedAt, id). */
export interface RunCursor {
  queuedAt: Date;
  id: string;
}

/** `<queuedAt in ms>:<id>`: opaque to clients, readable in logs. */
export function encodeRunCursor(run: { queuedAt: Date | string; id: string }): string {
  return `${new Date(run.queuedAt).getTime()}:${run.id}`;
}

/** A cursor as clients send it back, refused with BAD_REQUEST when it is not one this module wrote. */
export const runCursorSchema = z
  .string()
  .max(160)
  // eslint-disable-next-line no-control-regex -- a cursor's id part holds no control characters
  .regex(/^\d{1,15}:[^\u0000-\u001f\u007f]{1,128}$/, { message: "not a cursor from a previous page" })
  .transform((value): RunCursor => {
    const at = value.indexOf(":");
    return { queuedAt: new Date(Number(value.slice(0, at))), id: value.slice(at + 1) };
  });

/** `agent.list`'s input, which the runs page's URL is also read into. */
export const runListInput = z.object({
  status: z.array(runStatusSchema).max(5).optional(),
  agentRole: agentRoleSchema.optional(),
  origin: z.enum(RUN_ORIGINS).optional(),
  q: text({ max: 100, trim: true }).optional(),
  from: isoDateInput().optional(),
  to: isoDateInput().optional(),
  cursor: runCursorSchema.optional(),
  limit: z.number().int().min(1).max(100).default(20),
});

export interface RunSearch {
  status?: RunStatus[];
  agentRole?: string;
  origin?: RunOrigin;
  /**
   * What a user types to find a run: the start of its id (copied from a page or a log), a
   * word of its role's name or title, or words of its last message or error.
   */
  q?: string;
  /** Queued at or after this instant. */
  from?: string;
  /** Queued before this instant. */
  to?: string;
  cursor?: RunCursor;
  limit: number;
}

/** What the search needs to know about the deployment's roles. */
export interface RoleNames {
  /** Every role with its title (e.g. "client-researcher" → "Client researcher"). */
  titles: ReadonlyMap<string, string>;
  /** Roles whose runs an outside agent reports. */
  external: readonly string[];
}

/** The deployment's roles as the search sees them: Pulse's own and outside agents', each with its title. */
export function roleNames(
  own: readonly string[],
  external: readonly string[],
  title: (role: string) => string = (r) => r,
): RoleNames {
  return { titles: new Map([...own, ...external].map((role) => [role, title(role)])), external };
}

/** `%`, `_` and `\` typed by a user are literal characters, not LIKE wildcards. */
const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

function searchTerm(q: string, roles: RoleNames): Prisma.Sql {
  const words = `%${escapeLike(q)}%`;
  const needle = q.toLowerCase();
  const matchingRoles = [...roles.titles]
    .filter(([role, title]) => role.includes(needle) || title.toLowerCase().includes(needle))
    .map(([role]) => role);
  const terms = [
    Prisma.sql`"id" LIKE ${`${escapeLike(needle)}%`}`,
    Prisma.sql`"message" ILIKE ${words}`,
    Prisma.sql`"error" ILIKE ${words}`,
    ...(matchingRoles.length ? [Prisma.sql`"agentRole" IN (${Prisma.join(matchingRoles)})`] : []),
  ];
  return Prisma.sql`(${Prisma.join(terms, " OR ")})`;
}

function originTerm(origin: RunOrigin, roles: RoleNames): Prisma.Sql {
  if (origin === "chain") return Prisma.sql`"chainId" IS NOT NULL`;
  // Outside agents' roles never run in a chain; an empty list would be invalid SQL.
  const external = roles.external.length
    ? Prisma.sql`"agentRole" IN (${Prisma.join(roles.external)})`
    : Prisma.sql`FALSE`;
  return origin === "external"
    ? Prisma.sql`"chainId" IS NULL AND ${external}`
    : Prisma.sql`"chainId" IS NULL AND NOT (${external})`;
}

/**
 * The statement that finds one page of ids: `limit + 1` rows, the extra one saying whether
 * another page follows. The cursor bounds the index range (`queuedAt <= t`) as well as
 * filtering ties (`id < cursor.id`), so a deep page does not re-read the pages before it.
 */
export function runSearchStatement(tenantId: string, search: RunSearch, roles: RoleNames): Prisma.Sql {
  const terms: Prisma.Sql[] = [Prisma.sql`"tenantId" = ${tenantId}`];
  if (search.status?.length)
    terms.push(Prisma.sql`"status" IN (${Prisma.join(search.status.map((s) => Prisma.sql`${s}::"RunStatus"`))})`);
  if (search.agentRole) terms.push(Prisma.sql`"agentRole" = ${search.agentRole}`);
  if (search.origin) terms.push(originTerm(search.origin, roles));
  if (search.q) terms.push(searchTerm(search.q, roles));
  if (search.from) terms.push(Prisma.sql`"queuedAt" >= ${new Date(search.from)}`);
  if (search.to) terms.push(Prisma.sql`"queuedAt" < ${new Date(search.to)}`);
  if (search.cursor) {
    const { queuedAt, id } = search.cursor;
    terms.push(Prisma.sql`"queuedAt" <= ${queuedAt} AND ("queuedAt" < ${queuedAt} OR "id" < ${id})`);
  }
  return Prisma.sql`SELECT "id", "queuedAt" FROM "AgentRun" WHERE ${Prisma.join(terms, " AND ")}
    ORDER BY "queuedAt" DESC, "id" DESC LIMIT ${search.limit + 1}`;
}
