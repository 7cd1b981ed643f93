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

/**
 * Records each text the connection indicator shows (its words, not its button), in order, from
 * the page's first paint, with when it showed (ms since the page began), and the page's
 * WebSockets: what a test that waits in vain for a state prints, to say where the page stuck.
 */
export async function recordIndicator(page: Page): Promise<() => Promise<string>> {
  await page.addInitScript(() => {
    const w = window as unknown as { __indicator: string[]; __indicatorAt: number[] };
    w.__indicator = [];
    w.__indicatorAt = [];
    const note = () => {
      const text = document.querySelector("[data-testid=connection] > span")?.textContent?.trim() ?? "";
      if (!text || w.__indicator.at(-1) === text) return;
      w.__indicator.push(text);
      w.__indicatorAt.push(Math.round(performance.now()));
    };
    document.addEventListener("DOMContentLoaded", () => {
      note();
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  });
  const started = Date.now();
  const sockets: string[] = [];
  page.on("websocket", (ws) => {
    const at = () => `${Date.now() - started} ms`;
    const n = sockets.push(`#${sockets.length + 1} opened at ${at()}`) - 1;
    ws.on("socketerror", (error) => (sockets[n] += `, error at ${at()}: ${error}`));
    ws.on("close", () => (sockets[n] += `, closed at ${at()}`));
  });
  return async () => {
    const shown = await page.evaluate(() => {
      const w = window as unknown as { __indicator: string[]; __indicatorAt: number[] };
      return w.__indicator.map((text, i) => `${w.__indicatorAt[i]} ms ${text}`);
    });
    return `indicator: ${shown.join(" → ")}\nWebSockets (from the test's side): ${sockets.join("; ") || "none"}`;
  };
}
/** The texts the indicator showed so far, in order (after `recordIndicator`). */
export const indicatorTexts = (page: Page) =>
  page.evaluate(() => (window as unknown as { __indicator: string[] }).__indicator.slice());

/** Waits for the indicator's `state`; if it never comes, fails with what the page showed and its sockets. */
export async function waitForConnection(page: Page, state: string, timeout: number, history: () => Promise<string>) {
  try {
    await page.locator(`[data-connection=${state}]`).waitFor({ timeout });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${await history()}`, { cause: error });
  }
}
