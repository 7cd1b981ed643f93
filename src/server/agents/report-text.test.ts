import { describe, expect, it } from "vitest";
import { fitText, textPieces } from "./report-text";

/** No lone surrogate: UTF-8 would turn one into U+FFFD. */
const wellFormed = (text: string) => Buffer.from(text, "utf8").toString("utf8") === text;

describe("fitText", () => {
  it("keeps text within the limit as it is, and cuts longer text to the limit with an ellipsis", () => {
    expect(fitText("short", 10)).toBe("short");
    expect(fitText("0123456789", 10)).toBe("0123456789");
    expect(fitText("0123456789A", 10)).toBe("012345678…");
    expect(fitText("x".repeat(10_000), 500)).toHaveLength(500);
  });

  it("never cuts an emoji in half", () => {
    // "😀" is two code units; cut between them, the text would end in a lone surrogate.
    const cut = fitText(`abcdefgh😀tail`, 10);
    expect(cut).toBe("abcdefgh…");
    expect(wellFormed(cut)).toBe(true);
  });
});

describe("textPieces", () => {
  it("splits text into consecutive pieces within the limit that join back to it", () => {
    const text = Array.from({ length: 5_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
    const pieces = textPieces(text, 1_024);
    expect(pieces.map((p) => p.length)).toEqual([1024, 1024, 1024, 1024, 904]);
    expect(pieces.join("")).toBe(text);
    expect(textPieces("", 10)).toEqual([]);
    expect(textPieces("fits", 10)).toEqual(["fits"]);
  });

  it("keeps every emoji whole, in one piece", () => {
    const text = "😀".repeat(7);
    const pieces = textPieces(text, 5);
    expect(pieces.join("")).toBe(text);
    for (const piece of pieces) {
      expect(piece.length).toBeLessThanOrEqual(5);
      expect(wellFormed(piece)).toBe(true);
    }
  });
});
