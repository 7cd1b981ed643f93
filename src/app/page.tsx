import type { Metadata } from "next";
import { AppShell } from "@/components/app-shell";
import { Dashboard } from "@/components/dashboard";
import { dashboardData, requireSession } from "@/server/web/page-data";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Agents" };

export default async function DashboardPage() {
  const session = await requireSession();
  const data = await dashboardData();
  return (
    <AppShell email={session.email} title="Agents">
      <Dashboard {...data} />
    </AppShell>
  );
}
