import type { Metadata } from "next";
import { SharedRun, SharedRunEnded } from "@/components/shared-run";
import { sharedRunData } from "@/server/web/page-data";

export const dynamic = "force-dynamic";

// The link's token is in this page's address: never hand it on to another site.
export const metadata: Metadata = { title: "Shared run · Pulse", referrer: "no-referrer", robots: { index: false, follow: false } };

/** A run shared by a read-only link: no sign-in, the link's token is the only credential. */
export default async function SharedRunPage({ params }: { params: Promise<{ token: string }> }) {
  const { token } = await params;
  const shared = await sharedRunData(token);
  return (
    <main className="mx-auto flex max-w-5xl flex-col gap-6 px-4 py-6">
      <header className="flex flex-wrap items-baseline gap-3">
        <h1 className="text-xl font-semibold">Pulse</h1>
        <span className="text-sm text-slate-500">a run shared with you, read-only</span>
      </header>
      {shared ? <SharedRun token={token} initial={shared.run} title={shared.title} /> : <SharedRunEnded />}
    </main>
  );
}
