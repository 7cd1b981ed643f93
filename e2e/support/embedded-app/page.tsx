import { createPulseClient } from "@pulse/client";
import { PulseProvider, usePulseRun } from "@pulse/client/react";
import { createRoot } from "react-dom/client";

/**
 * A product's page on its own origin showing one Pulse run live: the lines an adopter writes
 * with `@pulse/client` (installed from its packed tarball into a scratch app by
 * `embedded-app.ts`), fed by a token its own backend minted (`/token`).
 */
const params = new URLSearchParams(location.hash.slice(1));

const pulse = createPulseClient({
  url: params.get("pulse")!,
  getToken: async () => (await fetch("/token")).text(),
});

function RunStatus({ runId }: { runId: string }) {
  const { run, timeline, connection } = usePulseRun(runId);
  const live = timeline.some(({ event }) => event.type === "agent:progress");
  document.body.dataset.following = String(run !== null);
  document.body.dataset.live = String(live);
  return (
    <p>
      <span id="role">{run?.agentRole}</span>: <strong id="status">{run?.status ?? "loading"}</strong> (
      <span id="progress">{run?.progress ?? 0}</span>%) <small id="connection">{connection.status}</small>
    </p>
  );
}

createRoot(document.getElementById("root")!).render(
  <PulseProvider client={pulse}>
    <RunStatus runId={params.get("run")!} />
  </PulseProvider>,
);
