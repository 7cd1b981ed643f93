"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";
import { trpc } from "@/lib/trpc/client";

/** What the deployment offers besides signing in (see `auth.signInOptions`). */
export interface SignInOptions {
  registrationOpen: boolean;
  demoAccount: { email: string; password: string } | null;
}

/** Sign in, or create a tenant (which starts its setup chain and lands on the context page). */
export function AuthForm({ mode, options }: { mode: "login" | "register"; options: SignInOptions }) {
  const router = useRouter();
  const [error, setError] = useState<string | null>(null);
  const login = trpc.auth.login.useMutation();
  const register = trpc.auth.register.useMutation();
  const pending = login.isPending || register.isPending;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(null);
    const form = new FormData(event.currentTarget);
    const email = String(form.get("email") ?? "");
    const password = String(form.get("password") ?? "");
    try {
      if (mode === "login") {
        await login.mutateAsync({ email, password });
        router.replace("/");
      } else {
        await register.mutateAsync({ email, password, tenantName: String(form.get("tenantName") ?? "") });
        router.replace("/settings/context");
      }
      router.refresh();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }

  return (
    <main id="main" tabIndex={-1} className="mx-auto flex min-h-screen max-w-sm flex-col justify-center gap-6 px-4">
      <h1 className="text-2xl font-semibold">Pulse</h1>
      <form className="card flex flex-col gap-4" onSubmit={(event) => void submit(event)} aria-labelledby="auth-title">
        <h2 id="auth-title" className="text-lg font-semibold">
          {mode === "login" ? "Sign in" : "Create your account"}
        </h2>
        {mode === "register" ? (
          <label className="flex flex-col gap-1 text-sm text-slate-600">
            Company
            <input className="field" name="tenantName" required maxLength={100} autoComplete="organization" />
          </label>
        ) : null}
        <label className="flex flex-col gap-1 text-sm text-slate-600">
          Email
          <input className="field" name="email" type="email" required autoComplete="email" />
        </label>
        <label className="flex flex-col gap-1 text-sm text-slate-600">
          Password
          <input
            className="field"
            name="password"
            type="password"
            required
            minLength={mode === "register" ? 10 : 1}
            autoComplete={mode === "login" ? "current-password" : "new-password"}
          />
        </label>
        {error ? (
          <p className="text-sm text-bad" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" className="btn justify-center" disabled={pending}>
          {mode === "login" ? "Sign in" : "Create account"}
        </button>
        <p className="text-sm text-slate-500">
          {mode === "login" && !options.registrationOpen ? (
            <>No account? Ask the administrator of this Pulse for one.</>
          ) : mode === "login" ? (
            <>
              New here?{" "}
              <Link className="text-accent underline underline-offset-2" href="/register">
                Create an account
              </Link>
            </>
          ) : (
            <>
              Have an account?{" "}
              <Link className="text-accent underline underline-offset-2" href="/login">
                Sign in
              </Link>
            </>
          )}
        </p>
      </form>
      {mode === "login" && options.demoAccount ? (
        <p className="text-center text-xs text-slate-500">
          Demo: {options.demoAccount.email} / {options.demoAccount.password}
        </p>
      ) : null}
    </main>
  );
}
