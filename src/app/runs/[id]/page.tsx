import { notFound } from "next/navigation";
import { AppShell } from "@/components/app-shell";
import { RunDetail } from "@/components/run-detail";
import { runData, requireSession } from "@/server/web/page-data";

export const dynamic = "force-dynamic";

export default async function RunPage({ params }: { params: Promise<{ id: string }> }) {
  const session = await requireSession();
  const { id } = await params;
  const data = await runData(session, id);
  if (!data) notFound();
  const { run, title } = data;
  return (
    <AppShell email={session.email} title="Run">
      <RunDetail runId={run.id} initial={run} title={title} />
    </AppShell>
  );
}
