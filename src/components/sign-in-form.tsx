"use client";

import { useState, type FormEvent } from "react";
import { trpc } from "@/lib/trpc/client";

/** Sign in, or create a tenant (which starts its setup chain). */
export function SignInForm({ onSignedIn }: { onSignedIn: () => void }) {
  const [mode, setMode] = useState<"login" | "register">("login");
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
      if (mode === "login") await login.mutateAsync({ email, password });
      else await register.mutateAsync({ email, password, tenantName: String(form.get("tenantName") ?? "") });
      onSignedIn();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }

  return (
    <form className="card stack" onSubmit={submit} style={{ maxWidth: 380 }} aria-label={mode === "login" ? "Sign in" : "Create an account"}>
      <h2>{mode === "login" ? "Sign in" : "Create an account"}</h2>
      {mode === "register" ? (
        <label>
          Company
          <input name="tenantName" required maxLength={100} autoComplete="organization" />
        </label>
      ) : null}
      <label>
        Email
        <input name="email" type="email" required autoComplete="email" />
      </label>
      <label>
        Password
        <input name="password" type="password" required minLength={mode === "register" ? 8 : 1} autoComplete={mode === "login" ? "current-password" : "new-password"} />
      </label>
      {error ? <div className="error" role="alert">{error}</div> : null}
      <div className="row">
        <button type="submit" disabled={pending}>{mode === "login" ? "Sign in" : "Create account"}</button>
        <button type="button" className="secondary" onClick={() => setMode(mode === "login" ? "register" : "login")}>
          {mode === "login" ? "New here? Create an account" : "I have an account"}
        </button>
      </div>
      <p className="muted">Demo: demo@pulse.local / pulse-demo</p>
    </form>
  );
}
