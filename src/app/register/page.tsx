import type { Metadata } from "next";
import Link from "next/link";
import { redirect } from "next/navigation";
import { AuthForm } from "@/components/auth-form";
import { pageSession, signInOptions } from "@/server/web/page-data";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Create an account" };

export default async function RegisterPage() {
  if (await pageSession()) redirect("/");
  const options = await signInOptions();
  if (!options.registrationOpen) return <RegistrationClosed />;
  return <AuthForm mode="register" options={options} />;
}

/** What a visitor sees where accounts are made by the product Pulse is part of, not by a form. */
function RegistrationClosed() {
  return (
    <main id="main" tabIndex={-1} className="mx-auto flex min-h-screen max-w-sm flex-col justify-center gap-6 px-4">
      <h1 className="text-2xl font-semibold">Pulse</h1>
      <section className="card flex flex-col gap-3" aria-labelledby="closed-title">
        <h2 id="closed-title" className="text-lg font-semibold">
          Registration is closed
        </h2>
        <p className="text-sm text-slate-600">
          Accounts on this Pulse are created by its administrator. Ask them for access, or sign in if you have an
          account.
        </p>
        <Link className="btn justify-center" href="/login">
          Sign in
        </Link>
      </section>
    </main>
  );
}
