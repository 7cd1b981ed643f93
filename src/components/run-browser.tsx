"use client";

import Form from "next/form";
import Link from "next/link";
import { useEffect, useMemo, useRef, type ReactNode } from "react";
import { runsHref, STATUS_CHOICES, type RunFilterParams, type RunListInput } from "@/lib/run-filter";
import { trpc } from "@/lib/trpc/client";
import type { AgentEvent, RoleInfo, RunView } from "@/lib/trpc/types";
import { usePulseAgents } from "@pulse/client/react";
import { useNow } from "@/lib/use-now";
import { RunHistory } from "./run-history";
import { RunRow } from "./run-list";

export interface RunBrowserProps {
  params: RunFilterParams;
  /** `agent.list`'s input for this page, as the server checked it. */
  input: RunListInput;
  /** Where this page starts (none: the newest runs). */
  cursor?: string;
  /** The page as the server read it for the first paint. */
  page: { runs: RunView[]; nextCursor: string | null };
  roles: RoleInfo[];
  /** URL filters that did not parse and were left out. */
  problems: string[];
}

const ORIGINS = [
  { value: "chain", label: "Setup chain" },
  { value: "manual", label: "Started by hand" },
  { value: "external", label: "Outside agents" },
];

const ENDINGS = new Set<AgentEvent["type"]>(["agent:completed", "agent:failed", "agent:cancelled"]);

/**
 * The tenant's run history: filters and a search that live in the URL (a plain GET form, so a
 * filtered list can be reloaded and shared), a page of runs, and links to older pages. The
 * visible runs follow the live feed; the newest page also takes in runs as they start.
 */
export function RunBrowser({ params, input, cursor, page, roles, problems }: RunBrowserProps) {
  const now = useNow();
  const utils = trpc.useUtils();
  const list = trpc.agent.list.useQuery(input, {
    initialData: page,
    staleTime: Infinity,
  });
  // A run that ended may leave a status filter's newest page; the next effect adds new runs.
  const { state } = usePulseAgents({
    onEvent: (event) => {
      if (!cursor && ENDINGS.has(event.type)) void utils.agent.list.invalidate();
      if (ENDINGS.has(event.type)) void utils.agent.history.invalidate();
    },
  });
  const titles = useMemo(() => Object.fromEntries(roles.map((r) => [r.role, r.title])), [roles]);
  const external = useMemo(() => new Set(roles.filter((r) => r.external).map((r) => r.role)), [roles]);
  // A visible run shows its newest state: the feed's, when that is newer than the page's.
  const runs = (list.data ?? page).runs.map((run) => {
    const live = state.runs[run.id];
    return live && live.seq >= run.seq ? live : run;
  });
  const nextCursor = (list.data ?? page).nextCursor;

  // The newest page asks again once the feed (an event, or the subscription's snapshot) knows
  // a run newer than the page's newest that the page lacks: once per run, for a run the
  // filters leave out stays out.
  const asked = useRef(new Set<string>());
  const newest = runs[0]?.queuedAt ?? "";
  const onPage = runs.map((r) => r.id).join();
  useEffect(() => {
    if (cursor) return;
    const fresh = Object.values(state.runs).filter(
      (r) => r.queuedAt >= newest && !onPage.includes(r.id) && !asked.current.has(r.id),
    );
    if (fresh.length === 0) return;
    fresh.forEach((r) => asked.current.add(r.id));
    void utils.agent.list.invalidate();
  }, [state.runs, cursor, newest, onPage, utils]);
  const filtered = Object.keys(params).length > 0;

  return (
    <div className="flex flex-col gap-4">
      <Form
        key={JSON.stringify(params)}
        action="/runs"
        className="card flex flex-wrap items-end gap-3"
        aria-label="Find runs"
      >
        <FilterField id="runs-q" label="Search" wide>
          <input
            className="field"
            type="search"
            id="runs-q"
            name="q"
            defaultValue={params.q ?? ""}
            maxLength={100}
            aria-describedby="runs-q-help"
            placeholder="Run id, agent or words"
          />
          <span id="runs-q-help" className="sr-only">
            The start of a run id, an agent&apos;s name, or words of a run&apos;s last message or error
          </span>
        </FilterField>
        <FilterSelect
          name="status"
          label="Status"
          value={params.status}
          options={Object.keys(STATUS_CHOICES).map((s) => ({ value: s, label: s[0]!.toUpperCase() + s.slice(1) }))}
        />
        <FilterSelect
          name="role"
          label="Agent"
          value={params.role}
          options={roles.map((r) => ({ value: r.role, label: r.title }))}
        />
        <FilterSelect name="origin" label="Started" any="Any way" value={params.origin} options={ORIGINS} />
        <FilterField id="runs-from" label="From (UTC)">
          <input className="field" type="date" id="runs-from" name="from" defaultValue={params.from ?? ""} />
        </FilterField>
        <FilterField id="runs-to" label="To (UTC)">
          <input className="field" type="date" id="runs-to" name="to" defaultValue={params.to ?? ""} />
        </FilterField>
        <button type="submit" className="btn">
          Find
        </button>
        {filtered ? (
          <Link href="/runs" className="btn-quiet">
            Clear
          </Link>
        ) : null}
      </Form>
      {problems.length ? (
        <p role="alert" className="text-sm text-bad" data-testid="filter-problems">
          Left out of the search, as they could not be read: {problems.join(", ")}.
        </p>
      ) : null}
      <section className="card" aria-labelledby="runs-found">
        <h2 id="runs-found" className="mb-2 font-semibold">
          {cursor ? "Older runs" : filtered ? "Matching runs, newest first" : "All runs, newest first"}
        </h2>
        {runs.length === 0 ? (
          <p className="text-sm text-slate-600" data-testid="no-runs">
            {filtered ? "No runs match these filters." : "No runs yet."}
          </p>
        ) : (
          <ul className="divide-y divide-slate-100" data-testid="run-list">
            {runs.map((run) => (
              <RunRow
                key={run.id}
                run={run}
                title={titles[run.agentRole] ?? run.agentRole}
                external={external.has(run.agentRole)}
                now={now}
                detailed
              />
            ))}
          </ul>
        )}
        <nav aria-label="Pages of runs" className="mt-3 flex flex-wrap gap-3">
          {cursor ? (
            <Link href={runsHref(params)} className="btn-quiet" data-testid="newest-page">
              ← Newest runs
            </Link>
          ) : null}
          {nextCursor ? (
            <Link href={runsHref(params, nextCursor)} className="btn-quiet" data-testid="older-page">
              Older runs →
            </Link>
          ) : null}
        </nav>
      </section>
      <RunHistory titles={titles} />
    </div>
  );
}

/** One filter of the form: its label above its control, sharing the row's width (`wide`: twice the share). */
function FilterField({
  id,
  label,
  wide = false,
  children,
}: {
  id: string;
  label: string;
  wide?: boolean;
  children: ReactNode;
}) {
  return (
    <div className={`flex flex-col gap-1 text-sm ${wide ? "min-w-48 flex-[2]" : "min-w-36 flex-1"}`}>
      <label htmlFor={id}>{label}</label>
      {children}
    </div>
  );
}

/** A filter chosen from a list, "Any" (or `any`) first; the URL parameter `name` carries it. */
function FilterSelect({
  name,
  label,
  value,
  options,
  any = "Any",
}: {
  name: string;
  label: string;
  value: string | undefined;
  options: { value: string; label: string }[];
  any?: string;
}) {
  const id = `runs-${name}`;
  return (
    <FilterField id={id} label={label}>
      <select className="field" id={id} name={name} defaultValue={value ?? ""}>
        <option value="">{any}</option>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </FilterField>
  );
}
