import type { ReactNode } from "react";
import { NavBar } from "./nav-bar";

/** The signed-in frame: navigation with the live indicator, then the page. */
export function AppShell({ email, title, children }: { email: string; title: string; children: ReactNode }) {
  return (
    <>
      <NavBar email={email} />
      <main id="main" tabIndex={-1} className="mx-auto flex max-w-5xl flex-col gap-6 px-4 py-6">
        <h1 className="text-xl font-semibold">{title}</h1>
        {children}
      </main>
    </>
  );
}
