import { notFound } from "next/navigation";
import { AppShell } from "@/components/app-shell";
import { RunDetail } from "@/components/run-detail";
import { runData, requireSession } from "@/server/web/page-data";
import { servicesForPages } from "@/server/web/page-services";

export const dynamic = "force-dynamic";

export default async function RunPage({ params }: { params: Promise<{ id: string }> }) {
  const session = await requireSession();
  const { id } = await params;
  const run = await runData(session, id);
  if (!run) notFound();
  const title = servicesForPages().agents.find((a) => a.role === run.agentRole)?.title ?? run.agentRole;
  return (
    <AppShell email={session.email} title="Run">
      <RunDetail runId={run.id} initial={run} title={title} />
    </AppShell>
  );
}
