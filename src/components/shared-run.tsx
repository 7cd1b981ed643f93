"use client";

import { useEffect, useState, useSyncExternalStore } from "react";
import { TRPCProvider } from "@/lib/trpc/provider";
import { trpc } from "@/lib/trpc/client";
import { OLD_SHARE_LINK_PATH, shareLinkPath } from "@/shared/share-link";
import { LiveIndicator } from "./live-indicator";
import { SharedRunDetail } from "./run-detail";

function subscribeToHash(onChange: () => void): () => void {
  window.addEventListener("hashchange", onChange);
  return () => window.removeEventListener("hashchange", onChange);
}

/** The share link's token, from the address's fragment; undefined while the page renders on the server. */
function useFragmentToken(): string | undefined {
  return useSyncExternalStore(
    subscribeToHash,
    () => window.location.hash.slice(1),
    () => undefined,
  );
}

/**
 * The page of a share link: its token from the fragment (`/share#<token>`), the run through
 * a tRPC client of its own that speaks for the link (its token on the socket and over HTTP)
 * rather than for a signed-in user. When the link is revoked or expires, the server ends the
 * subscription and the page says so.
 */
export function SharedRunFromLink() {
  const token = useFragmentToken();
  const [ended, setEnded] = useState<string | null>(null);
  if (token === undefined) return null;
  if (!token || ended === token) return <SharedRunEnded />;
  return (
    // A new token in the fragment is a new viewer: keyed, so nothing of the last one is kept.
    <TRPCProvider key={token} auth={{ kind: "share", token }} onUnauthorized={() => setEnded(token)}>
      <SharedRun onEnded={() => setEnded(token)} />
    </TRPCProvider>
  );
}

function SharedRun({ onEnded }: { onEnded: () => void }) {
  const run = trpc.share.run.useQuery(undefined, { retry: false, staleTime: Infinity });
  const refused = run.error?.data?.code === "UNAUTHORIZED";
  useEffect(() => {
    if (refused) onEnded();
  }, [refused, onEnded]);
  if (run.error && !refused) {
    return (
      <p className="card text-sm text-slate-600" role="alert">
        The shared run could not be loaded; reload the page to try again.
      </p>
    );
  }
  if (!run.data) return <p className="text-sm text-slate-500">Loading the shared run…</p>;
  return (
    <>
      <div className="flex justify-end">
        <LiveIndicator />
      </div>
      <SharedRunDetail initial={run.data} title={run.data.title} />
    </>
  );
}

export function SharedRunEnded() {
  return (
    <p className="card text-sm text-slate-600" role="status" data-testid="share-ended">
      This link has expired or was revoked. Ask whoever shared it for a new one.
    </p>
  );
}

/**
 * A link of the old form: its token moves into the fragment of the new one, in the
 * browser, replacing the old address in the history.
 */
export function MovedShareLink() {
  useEffect(() => {
    const token = OLD_SHARE_LINK_PATH.exec(window.location.pathname)?.[1];
    if (token) window.location.replace(shareLinkPath(token));
  }, []);
  return (
    <p className="card text-sm text-slate-600" role="status" data-testid="share-moved">
      Share links have a new form; opening this one at its new address…
    </p>
  );
}
