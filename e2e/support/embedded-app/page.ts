import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink } from "@trpc/client";
import type { AppRouter } from "../../../src/server/trpc/root";

/**
 * A product's page on its own origin showing one Pulse run live: the lines an adopter writes
 * with the vanilla tRPC client (types from `AppRouter` only), a token its backend minted,
 * HTTP calls with it as a bearer header and the subscription over Pulse's WebSocket.
 */
const params = new URLSearchParams(location.hash.slice(1));
const pulseUrl = params.get("pulse")!;
const runId = params.get("run")!;
const getToken = async () => (await fetch("/token")).text();

const client = createTRPCClient<AppRouter>({
  links: [
    splitLink({
      condition: (op) => op.type === "subscription",
      true: wsLink({
        client: createWSClient({
          url: `${pulseUrl.replace(/^http/, "ws")}/api/trpc`,
          connectionParams: async () => ({ token: await getToken() }),
        }),
      }),
      false: httpBatchLink({
        url: `${pulseUrl}/api/trpc`,
        headers: async () => ({ authorization: `Bearer ${await getToken()}` }),
      }),
    }),
  ],
});

const status = document.getElementById("status")!;
const progress = document.getElementById("progress")!;
const show = (run: { status: string; progress: number }) => {
  status.textContent = run.status;
  progress.textContent = String(run.progress);
};

const run = await client.agent.get.query({ runId });
document.getElementById("role")!.textContent = run.agentRole;
show(run);
client.agent.onStatus.subscribe(
  { runId },
  {
    onData({ data }) {
      if (data.type === "snapshot" || data.type === "resync") {
        const latest = data.snapshot.runs.find((r) => r.id === runId);
        if (latest) show(latest);
        document.body.dataset.following = "true";
        return;
      }
      document.body.dataset.live = "true";
      if (data.type === "agent:progress") show({ status: "active", progress: data.progress });
      else if (data.type === "agent:completed") show({ status: "completed", progress: 100 });
      else if (data.type === "agent:failed" && !data.willRetry)
        show({ status: "failed", progress: Number(progress.textContent) });
      else if (data.type === "agent:active") show({ status: "active", progress: Number(progress.textContent) });
    },
    onError(error) {
      status.textContent = `error: ${error.message}`;
    },
  },
);
