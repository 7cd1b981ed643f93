"use client";

import { useState } from "react";
import { TRPCProvider } from "@/lib/trpc/provider";
import type { RunView } from "@/lib/trpc/types";
import { LiveIndicator } from "./live-indicator";
import { SharedRunDetail } from "./run-detail";

/**
 * A shared run, live, through a tRPC client of its own that speaks for the link (its token
 * on the socket and over HTTP) rather than for a signed-in user. When the link is revoked
 * or expires, the server ends the subscription and the page says so.
 */
export function SharedRun({ token, initial, title }: { token: string; initial: RunView; title: string }) {
  const [ended, setEnded] = useState(false);
  if (ended) return <SharedRunEnded />;
  return (
    <TRPCProvider auth={{ kind: "share", token }} onUnauthorized={() => setEnded(true)}>
      <div className="flex justify-end">
        <LiveIndicator />
      </div>
      <SharedRunDetail initial={initial} title={title} />
    </TRPCProvider>
  );
}

export function SharedRunEnded() {
  return (
    <p className="card text-sm text-slate-600" role="status" data-testid="share-ended">
      This link has expired or was revoked. Ask whoever shared it for a new one.
    </p>
  );
}
