import type { Page } from "playwright-core";

/**
 * Controls smaller than 24 × 24 CSS px (WCAG 2.2's minimum target size), by measuring
 * them; links inside a sentence are exempt, as WCAG exempts them.
 */
export function smallTargets(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll("a, button, summary, input, select, [role=button]")]
      .filter((el) => {
        const box = el.getBoundingClientRect();
        const inSentence = el.tagName === "A" && el.parentElement?.tagName === "P";
        return box.width > 0 && box.height > 0 && !inSentence && (box.width < 24 || box.height < 24);
      })
      .map(
        (el) =>
          `${el.outerHTML.slice(0, 100)} (${Math.round(el.getBoundingClientRect().width)}×${Math.round(el.getBoundingClientRect().height)})`,
      ),
  );
}
