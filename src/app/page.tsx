import type { Metadata } from "next";
import { AppShell } from "@/components/app-shell";
import { Dashboard } from "@/components/dashboard";
import { pageTitle } from "@/lib/format";
import { dashboardData, requireSession } from "@/server/web/page-data";

export const dynamic = "force-dynamic";
// Absolute: the root layout's title template names only the pages below it, not this one beside it.
export const metadata: Metadata = { title: { absolute: pageTitle("Agents") } };

export default async function DashboardPage() {
  const session = await requireSession();
  const data = await dashboardData();
  return (
    <AppShell email={session.email} title="Agents">
      <Dashboard {...data} />
    </AppShell>
  );
}
