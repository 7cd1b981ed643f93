"use client";

import { LiveAgents } from "@/components/live-agents";
import { SignInForm } from "@/components/sign-in-form";
import { trpc } from "@/lib/trpc/client";

export default function HomePage() {
  const utils = trpc.useUtils();
  const me = trpc.auth.me.useQuery();
  const logout = trpc.auth.logout.useMutation({ onSuccess: () => utils.invalidate() });

  return (
    <main>
      <header>
        <h1>Pulse</h1>
        {me.data ? (
          <div className="row">
            <span className="muted">{me.data.email}</span>
            <button type="button" className="secondary" onClick={() => logout.mutate()}>Sign out</button>
          </div>
        ) : null}
      </header>
      {me.isLoading ? <p className="muted">Loading…</p> : me.data ? <LiveAgents key={me.data.tenantId} /> : <SignInForm onSignedIn={() => void utils.invalidate()} />}
    </main>
  );
}
