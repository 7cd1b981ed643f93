import type { Locator, Page } from "playwright-core";

/** A colour as the browser paints it: red, green, blue and alpha, 0–255 each. */
export type Rgba = [number, number, number, number];

/** WCAG 2's contrast ratio between two opaque colours. */
export function contrast(a: Rgba, b: Rgba): number {
  const luminance = ([r, g, b]: Rgba) => {
    const [lr, lg, lb] = [r, g, b].map((c) => {
      const s = c / 255;
      return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * lr! + 0.7152 * lg! + 0.0722 * lb!;
  };
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light! + 0.05) / (dark! + 0.05);
}

type Painter = (color: string) => [number, number, number, number];

/**
 * Gives the page `window.__rgba(color)`: the colour read back from a canvas, so any notation
 * the stylesheet uses (oklch, hex) arrives as the bytes the browser paints.
 */
async function withPainter(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __rgba?: Painter };
    if (w.__rgba) return;
    const paint = document.createElement("canvas").getContext("2d", { willReadFrequently: true })!;
    w.__rgba = (color) => {
      paint.clearRect(0, 0, 1, 1);
      paint.fillStyle = color;
      paint.fillRect(0, 0, 1, 1);
      return [...paint.getImageData(0, 0, 1, 1).data] as [number, number, number, number];
    };
  });
}

/** How a page's element is ringed when it has the keyboard's focus, and what the ring is drawn on. */
export interface FocusRing {
  element: string;
  outlineStyle: string;
  outlineWidth: number;
  outline: Rgba;
  boxShadow: string;
  /** The first opaque background behind the element: its ring, drawn outside it, lies on this. */
  background: Rgba;
}

/** The focused element's ring; null when nothing but the page has the focus. */
export async function focusRing(page: Page): Promise<FocusRing | null> {
  await withPainter(page);
  return page.evaluate(() => {
    const rgba = (window as unknown as { __rgba: Painter }).__rgba;
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    let behind = el.parentElement;
    while (behind && rgba(getComputedStyle(behind).backgroundColor)[3] === 0) behind = behind.parentElement;
    const style = getComputedStyle(el);
    return {
      element: el.outerHTML.slice(0, 80),
      outlineStyle: style.outlineStyle,
      outlineWidth: parseFloat(style.outlineWidth),
      outline: rgba(style.outlineColor),
      boxShadow: style.boxShadow,
      background: rgba(getComputedStyle(behind ?? document.documentElement).backgroundColor),
    };
  });
}

/** A progress bar's fill and track colours, as painted. */
export async function barColors(page: Page, bar: Locator): Promise<{ fill: Rgba; track: Rgba }> {
  await withPainter(page);
  return bar.evaluate((track) => {
    const rgba = (window as unknown as { __rgba: Painter }).__rgba;
    return {
      fill: rgba(getComputedStyle(track.firstElementChild!).backgroundColor),
      track: rgba(getComputedStyle(track).backgroundColor),
    };
  });
}

/** One of the theme's colours (`--color-bad`), as the page paints it now. */
export async function themeColor(page: Page, property: string): Promise<Rgba> {
  await withPainter(page);
  return page.evaluate(
    (name) =>
      (window as unknown as { __rgba: Painter }).__rgba(
        getComputedStyle(document.documentElement).getPropertyValue(name).trim(),
      ),
    property,
  );
}
