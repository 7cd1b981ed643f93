import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { AuthForm } from "@/components/auth-form";
import { pageSession, signInOptions } from "@/server/web/page-data";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Sign in" };

export default async function LoginPage() {
  if (await pageSession()) redirect("/");
  return <AuthForm mode="login" options={await signInOptions()} />;
}
