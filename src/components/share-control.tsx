"use client";

import { useRef, useState } from "react";
import { copyFrom, copyOutcome } from "@/lib/copy-text";
import { formatDuration } from "@/lib/format";
import { trpc } from "@/lib/trpc/client";
import { LocalTime } from "./local-time";

/** How long a link made with the Share button lets its holder watch the run. */
const SHARE_LINK_MINUTES = 24 * 60;

/**
 * The run's share links: every link that still works, with who made it and when it
 * expires, each with its own Stop; Share makes another (its address is shown once, to
 * copy: the server keeps no token, only what lets the tenant tell links apart and stop them).
 */
export function ShareControl({ runId }: { runId: string }) {
  const utils = trpc.useUtils();
  const links = trpc.share.list.useQuery({ runId });
  const refresh = () => utils.share.list.invalidate({ runId });
  const create = trpc.share.create.useMutation({ onSettled: refresh });
  const revoke = trpc.share.revoke.useMutation({ onSettled: refresh });
  const [copied, setCopied] = useState<{ shareId: string; result: "copied" | "selected" } | null>(null);
  const field = useRef<HTMLInputElement>(null);
  const live = links.data ?? [];
  const created = create.data;

  return (
    <div className="flex flex-col gap-2" data-testid="share-links">
      {live.length > 0 ? (
        <ul className="flex flex-col gap-2" aria-label="Links to this run">
          {live.map((link) => {
            const address = created?.shareId === link.shareId ? `${window.location.origin}${created.path}` : null;
            return (
              <li
                key={link.shareId}
                className="flex flex-wrap items-center gap-2 rounded-md border border-slate-200 p-2 text-sm"
                data-testid="share-link-row"
                data-share-id={link.shareId}
              >
                {address ? (
                  <div className="flex w-full flex-wrap items-center gap-2" data-testid="share-link">
                    <input
                      ref={field}
                      className="field min-w-0 flex-1 font-mono text-xs"
                      readOnly
                      value={address}
                      aria-label="Share link"
                      onFocus={(e) => e.currentTarget.select()}
                    />
                    <button
                      type="button"
                      className="btn-quiet"
                      onClick={() =>
                        field.current &&
                        void copyFrom(field.current).then((result) => setCopied({ shareId: link.shareId, result }))
                      }
                    >
                      Copy
                    </button>
                    <span role="status" className="text-xs text-slate-600" data-testid="copy-status">
                      {copied?.shareId === link.shareId ? copyOutcome(copied.result) : ""}
                    </span>
                  </div>
                ) : null}
                <span className="text-slate-600">
                  Link by {link.createdBy ?? "a former member"}, made <LocalTime iso={link.createdAt} />, expires{" "}
                  <LocalTime iso={link.expiresAt} />
                </span>
                <button
                  type="button"
                  className="btn-quiet ml-auto"
                  disabled={revoke.isPending}
                  aria-label={`Stop sharing the link by ${link.createdBy ?? "a former member"}`}
                  onClick={() => revoke.mutate({ shareId: link.shareId })}
                >
                  Stop sharing
                </button>
              </li>
            );
          })}
        </ul>
      ) : null}
      <div className="flex flex-wrap items-center gap-2">
        <button
          type="button"
          className="btn-quiet"
          disabled={create.isPending}
          onClick={() => {
            setCopied(null);
            create.mutate({ runId, expiresInMinutes: SHARE_LINK_MINUTES });
          }}
        >
          {live.length > 0 ? "New share link" : "Share"}
        </button>
        <span className="text-xs text-slate-500">
          {live.length > 0
            ? "Each link works on its own until it expires: stopping one leaves the others working."
            : `Anyone with a link can watch this run, read-only, for ${formatDuration(SHARE_LINK_MINUTES * 60_000)}.`}
        </span>
      </div>
    </div>
  );
}
