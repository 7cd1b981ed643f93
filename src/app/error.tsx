"use client";

import { useEffect } from "react";

/**
 * What a page shows when its server data could not be read (the database unavailable, say):
 * the truth, with a way to try again, rather than an empty or "not found" page. The message
 * of a server error stays on the server; its digest ties this page to the server's log line.
 */
export default function PageError({ error, retry }: { error: Error & { digest?: string }; retry: () => void }) {
  useEffect(() => {
    console.error(error);
  }, [error]);
  return (
    <main
      id="main"
      tabIndex={-1}
      className="mx-auto flex min-h-screen max-w-sm flex-col justify-center gap-4 px-4"
      data-testid="page-error"
    >
      <h1 className="text-2xl font-semibold">Pulse</h1>
      <section className="card flex flex-col gap-3" role="alert">
        <h2 className="text-lg font-semibold">This page could not be loaded</h2>
        <p className="text-sm text-slate-600">Pulse could not read this page’s data just now. Try again in a moment.</p>
        {error.digest ? <p className="text-xs text-slate-400">Reference: {error.digest}</p> : null}
        <button type="button" className="btn justify-center" onClick={() => retry()}>
          Try again
        </button>
      </section>
    </main>
  );
}
