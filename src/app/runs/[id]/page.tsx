import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { AppShell } from "@/components/app-shell";
import { RunDetail } from "@/components/run-detail";
import { runPageName } from "@/lib/format";
import { pageSession, runData, requireSession } from "@/server/web/page-data";

export const dynamic = "force-dynamic";

/** The tab says which run is open: its agent and how it stands (the page keeps it current, see `RunDetail`). */
export async function generateMetadata({ params }: { params: Promise<{ id: string }> }): Promise<Metadata> {
  const session = await pageSession();
  // Undefined when the run could not be read; null when the tenant has no such run.
  const data = session ? await runData((await params).id).catch(() => undefined) : undefined;
  return { title: data ? runPageName(data.title, data.run) : data === null ? "Not found" : "Run" };
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
