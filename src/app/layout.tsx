import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import { pageTitle } from "@/lib/format";
import { TRPCProvider } from "@/lib/trpc/provider";
import "./globals.css";

export const metadata: Metadata = {
  // Each page names itself: "Agents · Pulse", "Context file · Pulse".
  title: { default: "Pulse", template: pageTitle("%s") },
  description: "What your AI agents are doing, live.",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        {/* First in the tab order on every page: keyboard users jump past the navigation. Each page's <main> is #main. */}
        <a href="#main" className="skip-link">
          Skip to content
        </a>
        <TRPCProvider>{children}</TRPCProvider>
      </body>
    </html>
  );
}
