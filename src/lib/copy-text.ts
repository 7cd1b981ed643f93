/**
 * Copies an element's text (an input's value): through the Clipboard API where the page has
 * it (a secure context), else by selecting the text and the older `execCommand("copy")`.
 * "selected" when neither worked: the text is left selected for the reader to copy by hand.
 */
export async function copyFrom(element: HTMLElement): Promise<"copied" | "selected"> {
  const text = element instanceof HTMLInputElement ? element.value : (element.textContent ?? "");
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return "copied";
    }
  } catch {
    // Refused (no permission, not focused): the fallback below may still work.
  }
  if (element instanceof HTMLInputElement) {
    element.focus();
    element.select();
  } else {
    window.getSelection()?.selectAllChildren(element);
  }
  try {
    if (document.execCommand("copy")) return "copied";
  } catch {
    // Not supported: the text stays selected.
  }
  return "selected";
}

/** What a copy button says once clicked. */
export function copyOutcome(result: "copied" | "selected"): string {
  return result === "copied" ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy";
}
