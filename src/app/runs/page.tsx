import type { Metadata } from "next";
import { AppShell } from "@/components/app-shell";
import { RunBrowser } from "@/components/run-browser";
import { requireSession, runsPageData } from "@/server/web/page-data";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Runs" };

export default async function RunsPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const session = await requireSession();
  const data = await runsPageData(await searchParams);
  return (
    <AppShell email={session.email} title="Runs">
      <RunBrowser {...data} />
    </AppShell>
  );
}
