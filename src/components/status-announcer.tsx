/**
 * What a screen reader hears of a run: its status word (and error) once when it changes,
 * politely. Everything else on the card (progress, messages, output) is left out of live
 * regions, so streaming never turns into a stream of announcements.
 */
export function StatusAnnouncer({ text, testId }: { text: string; testId?: string }) {
  return (
    <p className="sr-only" role="status" aria-live="polite" aria-atomic="true" data-testid={testId}>
      {text}
    </p>
  );
}
