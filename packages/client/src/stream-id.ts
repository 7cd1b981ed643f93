/**
 * Event ids are Redis stream entry ids (`<ms>-<seq>`), strictly increasing per tenant. They
 * compare as number pairs: as strings, "10-0" would sort before "9-0". Shared by the server
 * and the browser, which both order and deduplicate events by id.
 */
export function compareStreamIds(a: string, b: string): number {
  // Without leading zeros, a longer run of digits is the larger number, and equally long
  // runs compare as strings: no parsing or allocation on the path every event takes.
  const aDash = a.indexOf("-");
  const bDash = b.indexOf("-");
  const aMs = aDash < 0 ? a : a.slice(0, aDash);
  const bMs = bDash < 0 ? b : b.slice(0, bDash);
  const ms = compareDigits(aMs, bMs);
  if (ms !== 0) return ms;
  return compareDigits(aDash < 0 ? "0" : a.slice(aDash + 1), bDash < 0 ? "0" : b.slice(bDash + 1));
}

function compareDigits(a: string, b: string): number {
  const x = stripZeros(a);
  const y = stripZeros(b);
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x === y ? 0 : x < y ? -1 : 1;
}

function stripZeros(digits: string): string {
  let i = 0;
  while (i < digits.length - 1 && digits.charCodeAt(i) === 48) i++;
  return i === 0 ? digits : digits.slice(i);
}

/** The id before any event: resuming from it replays everything the stream still holds. */
export const STREAM_ORIGIN = "0-0";
