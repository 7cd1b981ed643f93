import Link from "next/link";
import { pageTitle } from "@/lib/format";

// Absolute, as the dashboard's: the root layout's title template does not reach this page beside it.
export const metadata = { title: { absolute: pageTitle("Not found") } };

/** Any address that names nothing of the caller's: an unknown page, or a run of another tenant. */
export default function NotFound() {
  return (
    <main
      id="main"
      tabIndex={-1}
      className="mx-auto flex min-h-screen max-w-sm flex-col justify-center gap-4 px-4"
      data-testid="not-found"
    >
      <h1 className="text-2xl font-semibold">Pulse</h1>
      <section className="card flex flex-col gap-3">
        <h2 className="text-lg font-semibold">Nothing here</h2>
        <p className="text-sm text-slate-600">This page does not exist, or it belongs to another team.</p>
        <Link href="/" className="btn justify-center">
          Back to the dashboard
        </Link>
      </section>
    </main>
  );
}
