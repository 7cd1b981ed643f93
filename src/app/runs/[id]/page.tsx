import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { AppShell } from "@/components/app-shell";
import { RunDetail } from "@/components/run-detail";
import { pageSession, runData, requireSession } from "@/server/web/page-data";

export const dynamic = "force-dynamic";

/** The tab says which run is open: its agent and how it stands when the page loaded. */
export async function generateMetadata({ params }: { params: Promise<{ id: string }> }): Promise<Metadata> {
  const session = await pageSession();
  const data = session ? await runData((await params).id).catch(() => null) : null;
  return { title: data ? `${data.title} run (${data.run.status})` : "Run" };
}

export default async function RunPage({ params }: { params: Promise<{ id: string }> }) {
  const session = await requireSession();
  const { id } = await params;
  const data = await runData(id);
  if (!data) notFound();
  const { run, title, external } = data;
  return (
    <AppShell email={session.email} title="Run">
      <RunDetail runId={run.id} initial={run} title={title} external={external} />
    </AppShell>
  );
}
