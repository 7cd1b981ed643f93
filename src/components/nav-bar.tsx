"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { trpc } from "@/lib/trpc/client";
import { LiveIndicator } from "./live-indicator";

const LINKS = [
  { href: "/", label: "Dashboard" },
  { href: "/runs", label: "Runs" },
  { href: "/settings/context", label: "Context file" },
];

export function NavBar({ email }: { email: string }) {
  const pathname = usePathname();
  // A full load after sign-out drops the socket with the session.
  const logout = trpc.auth.logout.useMutation({ onSettled: () => window.location.assign("/login") });
  return (
    <header className="border-b border-slate-200 bg-white">
      <div className="mx-auto flex max-w-5xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-3">
        <Link href="/" className="inline-flex min-h-6 items-center text-lg font-semibold">
          Pulse
        </Link>
        <nav aria-label="Main" className="flex gap-4 text-sm">
          {LINKS.map((l) => (
            <Link
              key={l.href}
              href={l.href}
              aria-current={pathname === l.href ? "page" : undefined}
              className="inline-flex min-h-6 items-center text-slate-600 hover:text-slate-900 aria-[current=page]:font-semibold aria-[current=page]:text-slate-900"
            >
              {l.label}
            </Link>
          ))}
        </nav>
        <div className="ml-auto flex items-center gap-4">
          <LiveIndicator />
          <span className="hidden text-sm text-slate-500 sm:inline">{email}</span>
          <button type="button" className="btn-quiet" onClick={() => logout.mutate()}>
            Sign out
          </button>
        </div>
      </div>
    </header>
  );
}
