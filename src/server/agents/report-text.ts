/**
 * Text Pulse reports itself (an in-process agent's, a failure reason the queue kept) made to
 * fit the event contract's limits (`TEXT_LIMITS`), so that a long model response or error
 * never fails the report that carries it: output is a stream, so it
 * goes in consecutive pieces, nothing lost; a progress message, a log line or a step name
 * is one line, cut short with an ellipsis. Neither ever splits a surrogate pair (an emoji
 * stays whole). External agents reporting over HTTP get a BAD_REQUEST naming the field
 * instead: an API answers what it was asked.
 */

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/** Where a piece of at most `max` code units starting at `start` ends, a pair kept whole. */
function pieceEnd(text: string, start: number, max: number): number {
  const end = Math.min(start + max, text.length);
  return end < text.length && end - start > 1 && isHighSurrogate(text.charCodeAt(end - 1)) ? end - 1 : end;
}

/** The text, or when longer than `max`, its start and "…" within `max`. */
export function fitText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, pieceEnd(text, 0, max - 1))}…`;
}

/** The text as consecutive pieces of at most `max` code units; none for an empty text. */
export function textPieces(text: string, max: number): string[] {
  const pieces: string[] = [];
  for (let start = 0; start < text.length;) {
    const end = pieceEnd(text, start, max);
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}
