/** What a task given up on by `withDeadline` rejects with (and aborts its signal with). */
export class DeadlineError extends Error {
  override readonly name = "DeadlineError";
}

/**
 * Runs `task` with a signal that aborts after `ms`, and settles by then at the latest: with the
 * task's answer, or with a `DeadlineError` even if the task ignores its signal. For the
 * requests every transport waits on (the token, a poll): a request that never ends (a proxy or
 * a hung server that accepted it and answers nothing) must not hold the page for good.
 */
export async function withDeadline<T>(task: (signal: AbortSignal) => Promise<T>, ms: number, what: string): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new DeadlineError(`${what} did not answer within ${ms} ms`);
      controller.abort(error);
      reject(error);
    }, ms);
  });
  try {
    return await Promise.race([task(controller.signal), late]);
  } finally {
    clearTimeout(timer);
  }
}
