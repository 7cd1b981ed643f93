import { z } from "zod";

/**
 * The shapes every client input is built from: text and dates that PostgreSQL, Redis and
 * the logs can hold, refused with BAD_REQUEST naming the field when they cannot. Agents'
 * own text is not client input: the event schema keeps it and repairs it instead.
 */

/** A UTF-16 surrogate without its pair: no UTF-8 encoding exists for it, so PostgreSQL refuses it in JSON. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Why a string cannot be stored as it is, or null when it can. */
export function textProblem(value: string): string | null {
  if (value.includes("\u0000")) return "must not contain the character U+0000";
  if (value.search(LONE_SURROGATE) !== -1) return "must not contain a lone surrogate (text that is not valid Unicode)";
  return null;
}

/**
 * Text an agent wrote, with each U+0000 and lone surrogate replaced by U+FFFD (the
 * replacement character): model output now and then carries one, and a stray character
 * must not fail the run that printed it.
 */
export function repairText(value: string): string {
  return textProblem(value) ? value.replaceAll("\u0000", "\uFFFD").replace(LONE_SURROGATE, "\uFFFD") : value;
}

/**
 * Any string schema (a pattern, an email) that also refuses U+0000 and lone surrogates.
 * PostgreSQL stores neither in text or JSON, so such input would otherwise fail deep in a
 * query as a 500.
 */
export function storable<T extends z.ZodType<string, string>>(schema: T): T {
  return schema.check((ctx) => {
    const problem = typeof ctx.value === "string" ? textProblem(ctx.value) : null;
    if (problem) ctx.issues.push({ code: "custom", message: problem, input: ctx.value });
  }) as T;
}

/** Text from a client, between `min` and `max` UTF-16 code units, refusing what cannot be stored. */
export function text({ min = 0, max, trim = false }: { min?: number; max: number; trim?: boolean }) {
  const base = trim ? z.string().trim() : z.string();
  return storable(base.min(min).max(max));
}

/** The earliest date any input may name: no run, link or session of Pulse is older. */
export const EARLIEST_INPUT_DATE = new Date("2000-01-01T00:00:00Z");
/** How far ahead of now an input date may be: JavaScript holds dates PostgreSQL cannot. */
const LATEST_INPUT_YEARS_AHEAD = 10;

/**
 * An ISO 8601 date-time from a client, between 2000-01-01 and ten years from now: year 0
 * and year 275760 parse in JavaScript, and PostgreSQL refuses them as a 500.
 */
export function isoDateInput({ offset = false }: { offset?: boolean } = {}) {
  return text({ max: 64 })
    .pipe(z.iso.datetime({ offset }))
    .refine(
      (value) => {
        const at = Date.parse(value);
        const latest = new Date();
        latest.setUTCFullYear(latest.getUTCFullYear() + LATEST_INPUT_YEARS_AHEAD);
        return at >= EARLIEST_INPUT_DATE.getTime() && at <= latest.getTime();
      },
      { message: `must be between 2000-01-01 and ${LATEST_INPUT_YEARS_AHEAD} years from now` },
    );
}
