import type { Metadata } from "next";
import { AppShell } from "@/components/app-shell";
import { ContextSettings } from "@/components/context-settings";
import { contextPageData, requireSession } from "@/server/web/page-data";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Context file" };

export default async function ContextPage() {
  const session = await requireSession();
  const data = await contextPageData();
  return (
    <AppShell email={session.email} title="Context file">
      <ContextSettings {...data} />
    </AppShell>
  );
}
