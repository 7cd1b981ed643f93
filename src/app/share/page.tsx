import type { Metadata } from "next";
import { SharedRunFromLink } from "@/components/shared-run";

// The link's token is in this page's fragment: never hand the address on to another site.
export const metadata: Metadata = {
  title: "Shared run",
  referrer: "no-referrer",
  robots: { index: false, follow: false },
};

/**
 * A run shared by a read-only link, `/share#<token>`: no sign-in, the token is the only
 * credential. It sits in the fragment, which the browser keeps to itself, so the page reads
 * it in the browser and the server only ever sees it as a credential, never in a path.
 */
export default function SharedRunPage() {
  return (
    <main id="main" tabIndex={-1} className="mx-auto flex max-w-5xl flex-col gap-6 px-4 py-6">
      <header className="flex flex-wrap items-baseline gap-3">
        <h1 className="text-xl font-semibold">Pulse</h1>
        <span className="text-sm text-slate-500">a run shared with you, read-only</span>
      </header>
      <SharedRunFromLink />
    </main>
  );
}
