import type { Metadata } from "next";
import { MovedShareLink } from "@/components/shared-run";

export const metadata: Metadata = {
  title: "Shared run",
  referrer: "no-referrer",
  robots: { index: false, follow: false },
};

/**
 * A share link of the old form, `/shared/<token>`: the browser moves the token into the
 * fragment of the new one. The token is never read here, so nothing on the server renders,
 * stores or logs it (the request log leaves such paths out too).
 */
export default function MovedSharedRunPage() {
  return (
    <main id="main" tabIndex={-1} className="mx-auto flex max-w-5xl flex-col gap-6 px-4 py-6">
      <h1 className="text-xl font-semibold">Pulse</h1>
      <MovedShareLink />
    </main>
  );
}
