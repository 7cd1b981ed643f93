import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter(
  (p): p is string => !!p,
);

/**
 * Debian's Chromium driven by Playwright. Playwright's own browser download is not used:
 * the system browser is, with the flags a closed network needs.
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = CANDIDATES.find((p) => existsSync(p));
  if (!executablePath)
    throw new Error("Browser tests need Chromium: apt-get install -y chromium (or set CHROMIUM_PATH).");
  return chromium.launch({
    executablePath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export const ARTIFACTS = path.resolve(import.meta.dirname, "../../test-results/screenshots");

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Records every item the page's live views apply (the `pulse:applied` window event). */
export async function recordApplied(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as { __applied: { id: string; type: string }[] };
    w.__applied = [];
    window.addEventListener("pulse:applied", (e) =>
      w.__applied.push((e as CustomEvent<{ id: string; type: string }>).detail),
    );
  });
}

export function applied(page: Page): Promise<{ id: string; type: string }[]> {
  return page.evaluate(() => (window as unknown as { __applied: { id: string; type: string }[] }).__applied.slice());
}
