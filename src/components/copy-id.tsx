"use client";

import { useRef, useState } from "react";
import { copyFrom, copyOutcome } from "@/lib/copy-text";

/**
 * A run's id, shortened on screen, with a button that copies all of it. Where the page cannot
 * copy, the whole id is shown selected for the reader to copy by hand.
 */
export function CopyId({ id, what = "run id" }: { id: string; what?: string }) {
  const text = useRef<HTMLElement>(null);
  const [result, setResult] = useState<"copied" | "selected" | null>(null);
  return (
    <span className="inline-flex items-center gap-1 text-xs text-slate-600" data-testid="copy-id">
      <code
        ref={text}
        title={id}
        className={
          result === "selected" ? "font-mono break-all" : "inline-block max-w-[8ch] truncate align-bottom font-mono"
        }
      >
        {id}
      </code>
      <button
        type="button"
        className="inline-flex min-h-6 min-w-6 items-center justify-center rounded border border-slate-300 px-1.5 text-slate-700 hover:bg-slate-100"
        aria-label={`Copy ${what} ${id}`}
        onClick={() => text.current && void copyFrom(text.current).then(setResult)}
      >
        Copy
      </button>
      <span role="status" data-testid="copy-id-status">
        {result ? copyOutcome(result) : ""}
      </span>
    </span>
  );
}
