"use client";

import { useRouter } from "next/navigation";
import { useEffect, useState, type ReactNode } from "react";
import {
  droppedOutputNotice,
  formatDuration,
  noOutputNotice,
  noStepsNotice,
  pageTitle,
  quietNotice,
  runDuration,
  runMessage,
  runPageName,
  statusAnnouncement,
  stepStatus,
  type StepStatus,
} from "@/lib/format";
import type { RunState } from "@pulse/client";
import { usePulseRun } from "@pulse/client/react";
import { describeOutput, timelineRows } from "@/lib/timeline-rows";
import { trpc } from "@/lib/trpc/client";
import type { AgentEvent, LogPage, OutputPage, RunView } from "@/lib/trpc/types";
import { useSharedRun } from "@/lib/trpc/use-run";
import { useNow } from "@/lib/use-now";
import { useStickToBottom } from "@/lib/use-stick-to-bottom";
import { displayStatus, statusLabel } from "./agent-panel";
import { LocalTime, useTimeFormat } from "./local-time";
import { ProgressBar } from "./progress-bar";
import { ShareControl } from "./share-control";
import { StatusAnnouncer } from "./status-announcer";
import { StatusBadge } from "./status-badge";

function describe(event: AgentEvent): string {
  switch (event.type) {
    case "agent:queued":
      return "Queued";
    case "agent:active":
      return `Started attempt ${event.attempt}`;
    case "agent:progress":
      return `${Math.round(event.progress)}% · ${event.message}`;
    case "agent:step":
      return `Step ${event.status}: ${event.name}${event.error ? ` (${event.error})` : ""}`;
    case "agent:output":
      return describeOutput({ chunks: 1, characters: event.chunk.length });
    case "agent:log":
      return `Log ${event.level}: ${event.message}`;
    case "agent:completed":
      return event.nextAgent ? `Completed; next: ${event.nextAgent}` : "Completed";
    case "agent:failed":
      return `${event.willRetry ? "Attempt failed, retrying" : "Failed"}: ${event.error}`;
    case "agent:cancelled":
      return `Cancelled${event.reason ? `: ${event.reason}` : ""}`;
  }
}

const isFinished = (run: RunView) =>
  run.status === "completed" || run.status === "failed" || run.status === "cancelled";

/**
 * One run of the signed-in user's tenant, live: with Cancel, Retry and Run again (each opens
 * the new run it starts) and Share, and its logs. An action the server refuses says why,
 * beside the buttons. The tab's title follows the run's status.
 */
export function RunDetail({
  runId,
  initial,
  title,
  external = false,
}: {
  runId: string;
  initial: RunView;
  title: string;
  external?: boolean;
}) {
  const { run: live, timeline } = usePulseRun(runId, { initial });
  const run = live ?? initial;
  const finished = isFinished(run);
  const router = useRouter();
  const utils = trpc.useUtils();
  const [notice, setNotice] = useState<string | null>(null);
  const cancel = trpc.agent.cancel.useMutation({
    onMutate: () => setNotice(null),
    onError: (error) => setNotice(`Could not cancel: ${error.message}`),
  });
  const retry = trpc.agent.retry.useMutation({
    onMutate: () => setNotice(null),
    onSuccess: (started) => router.push(`/runs/${started.runId}`),
    onError: (error) => setNotice(`Could not retry: ${error.message}`),
  });
  const again = trpc.agent.runAgain.useMutation({
    onMutate: () => setNotice(null),
    onSuccess: (started) => router.push(`/runs/${started.runId}`),
    onError: (error) =>
      setNotice(error.data?.code === "CONFLICT" ? "Already running" : `Could not start: ${error.message}`),
  });
  useEffect(() => {
    document.title = pageTitle(runPageName(title, run));
  }, [title, run]);
  const actions = (
    <>
      {!finished ? (
        <button
          type="button"
          className="btn-quiet"
          onClick={() => cancel.mutate({ runId })}
          disabled={cancel.isPending}
        >
          Cancel
        </button>
      ) : null}
      {run.status === "failed" || run.status === "cancelled" ? (
        <button
          type="button"
          className="btn"
          onClick={() => retry.mutate({ runId })}
          disabled={retry.isPending || retry.isSuccess}
          title={run.chainId ? "Start this agent again with the same input, then the rest of its chain" : undefined}
        >
          Retry
        </button>
      ) : null}
      {finished ? (
        <button
          type="button"
          className={run.status === "completed" ? "btn" : "btn-quiet"}
          onClick={() => again.mutate({ runId })}
          disabled={again.isPending || again.isSuccess}
          title="Start this agent on its own again, with the same input"
        >
          Run again
        </button>
      ) : null}
    </>
  );
  return (
    <RunPanel
      run={run}
      timeline={timeline}
      title={title}
      external={external}
      actions={actions}
      notice={notice}
      sharing={<ShareControl runId={runId} />}
      loadOutput={(before) => utils.agent.output.fetch({ runId, before }, { staleTime: 0 })}
    >
      {finished ? <MemberRunLogs runId={runId} /> : <LiveLogs timeline={timeline} title="Logs (live)" />}
    </RunPanel>
  );
}

/** A run as the holder of its share link sees it: live and read-only, with its logs. */
export function SharedRunDetail({ initial, title }: { initial: RunView; title: string }) {
  const { run: live, timeline } = useSharedRun(initial);
  const run = live ?? initial;
  const utils = trpc.useUtils();
  return (
    <RunPanel
      run={run}
      timeline={timeline}
      title={title}
      loadOutput={(before) => utils.share.output.fetch({ before }, { staleTime: 0 })}
    >
      {isFinished(run) ? <SharedRunLogs /> : <LiveLogs timeline={timeline} title="Logs (live)" />}
    </RunPanel>
  );
}

function MemberRunLogs({ runId }: { runId: string }) {
  return <RunLogs page={trpc.agent.logs.useQuery({ runId }).data} />;
}

function SharedRunLogs() {
  return <RunLogs page={trpc.share.logs.useQuery().data} />;
}

type Timeline = RunState["timeline"];

/** A run's status, steps, output and timeline; `children` go below (its logs). */
function RunPanel({
  run,
  timeline,
  title,
  external = false,
  actions,
  notice,
  sharing,
  loadOutput,
  children,
}: {
  run: RunView;
  /** The run's output before an offset, a page at a time. */
  loadOutput: LoadOutput;
  timeline: Timeline;
  title: string;
  external?: boolean;
  actions?: ReactNode;
  /** Why the last action failed, if it did. */
  notice?: string | null;
  sharing?: ReactNode;
  children: ReactNode;
}) {
  const now = useNow();
  const timelineRef = useStickToBottom<HTMLOListElement>(timeline);
  const [lifecycleOnly, setLifecycleOnly] = useState(false);
  const took = runDuration(run, now);
  const quiet = quietNotice(run, now, external ? "agent" : "worker");

  return (
    <div className="flex flex-col gap-6" data-testid="run-detail" data-status={displayStatus(run)}>
      <section className="card flex flex-col gap-3">
        <div className="flex flex-wrap items-center gap-3">
          <h2 className="text-lg font-semibold">{title}</h2>
          <StatusBadge status={displayStatus(run)} label={statusLabel(run, external)} />
          <span className="text-sm text-slate-500">attempt {run.attempt}</span>
          <div className="ml-auto flex gap-2">{actions}</div>
        </div>
        {notice ? (
          <p className="text-sm text-bad" role="alert" data-testid="run-notice">
            {notice}
          </p>
        ) : null}
        {sharing}
        <ProgressBar value={run.progress} label="Run progress" status={displayStatus(run)} />
        <StatusAnnouncer text={statusAnnouncement(title, run, external)} testId="run-announcer" />
        <p className="text-sm text-slate-600">
          {runMessage(run) || (external && run.status === "queued" ? "Waiting for the agent to pick the run up" : "")}
        </p>
        {quiet ? (
          <p className="text-sm text-warn" data-testid="quiet-notice">
            {quiet}
          </p>
        ) : null}
        <p className="text-xs text-slate-500">
          Queued <LocalTime iso={run.queuedAt} />
          {run.startedAt ? (
            <>
              {" · started "}
              <LocalTime iso={run.startedAt} />
            </>
          ) : null}
          {/* From being queued, every attempt counted. */}
          {took ? (
            <span data-testid="run-took">{` · ${took.ended ? "took" : "running for"} ${formatDuration(took.ms)}`}</span>
          ) : null}
        </p>
        {run.error && (run.status === "failed" || run.willRetry) ? (
          <p className="rounded-md bg-red-50 p-3 text-sm text-bad">{run.error}</p>
        ) : null}
      </section>

      <div className="grid gap-6 md:grid-cols-2">
        <TitledCard id="steps" title="Steps">
          {run.steps.length === 0 ? (
            <p className="text-sm text-slate-500" data-testid="no-steps">
              {noStepsNotice(run.status)}
            </p>
          ) : (
            <ol className="flex flex-col gap-1 text-sm">
              {run.steps.map((step) => (
                <li key={step.id} className="flex flex-wrap items-center gap-2">
                  <StepBadge status={stepStatus(step, run)} />
                  <span>{step.name}</span>
                  {step.attempt > 1 ? <span className="text-xs text-slate-500">attempt {step.attempt}</span> : null}
                  {step.finishedAt ? (
                    <span className="ml-auto text-xs text-slate-500">
                      {formatDuration(Date.parse(step.finishedAt) - Date.parse(step.startedAt))}
                    </span>
                  ) : null}
                </li>
              ))}
            </ol>
          )}
        </TitledCard>
        <TitledCard id="output" title="Output">
          {/* A new attempt's output starts afresh, and so does what was loaded of the last one's. */}
          <RunOutput key={run.attempt} run={run} loadOutput={loadOutput} />
        </TitledCard>
      </div>

      <TitledCard id="timeline" title="Timeline">
        <label className="mb-2 inline-flex min-h-6 items-center gap-2 text-sm">
          <input
            type="checkbox"
            className="size-6"
            checked={lifecycleOnly}
            onChange={(e) => setLifecycleOnly(e.target.checked)}
            data-testid="lifecycle-only"
          />
          Lifecycle events only
        </label>
        <ol
          ref={timelineRef}
          className="flex max-h-96 flex-col gap-1 overflow-auto text-sm"
          data-testid="timeline"
          tabIndex={0}
          aria-label="Timeline events"
        >
          {timelineRows(timeline, { lifecycleOnly }).map(({ id, event, output }) => (
            <li key={id} className="grid grid-cols-[7rem_1fr] gap-2" data-testid="timeline-row">
              <LocalTime iso={event.at} className="text-slate-500" />
              <span>{output ? describeOutput(output) : describe(event)}</span>
            </li>
          ))}
        </ol>
      </TitledCard>

      {children}
    </div>
  );
}

type LoadOutput = (before: number) => Promise<OutputPage>;

/**
 * A run's output: the newest part, which its view carries and its events extend, and on
 * demand the earlier parts, back to where the run stopped keeping them.
 */
function RunOutput({ run, loadOutput }: { run: RunView; loadOutput: LoadOutput }) {
  // A live run's output follows its end; a finished run's opens at its top, to be read from the start.
  const outputRef = useStickToBottom<HTMLPreElement>(run.output, !isFinished(run));
  const [earlier, setEarlier] = useState<{ text: string; start: number; dropped: number } | null>(null);
  const [loading, setLoading] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const start = earlier?.start ?? run.outputStart ?? 0;
  const dropped = Math.max(earlier?.dropped ?? 0, run.outputDropped ?? 0);
  const loadEarlier = () => {
    setLoading(true);
    setFailure(null);
    loadOutput(start)
      .then((page) => setEarlier({ text: page.text + (earlier?.text ?? ""), start: page.start, dropped: page.dropped }))
      .catch((error: Error) => setFailure(`Could not load earlier output: ${error.message}`))
      .finally(() => setLoading(false));
  };
  const text = (earlier?.text ?? "") + (run.output ?? "");
  return (
    <>
      {start > dropped ? (
        <button
          type="button"
          className="btn-quiet mb-2"
          onClick={loadEarlier}
          disabled={loading}
          data-testid="load-earlier-output"
        >
          Load earlier output
        </button>
      ) : null}
      {failure ? (
        <p className="text-sm text-bad" role="alert">
          {failure}
        </p>
      ) : null}
      {/* Focusable so the keyboard can scroll it; not a live region, so streaming is not read out chunk by chunk. */}
      <pre
        ref={outputRef}
        className="max-h-72 overflow-auto whitespace-pre-wrap text-sm text-slate-800"
        data-testid="run-output"
        tabIndex={0}
        role="region"
        aria-label="Run output"
      >
        {start > 0 && start <= dropped ? (
          <span className="text-slate-500">{`${droppedOutputNotice(start)}\n`}</span>
        ) : null}
        {text || <span className="text-slate-500">{noOutputNotice(run.status)}</span>}
      </pre>
    </>
  );
}

function StepBadge({ status }: { status: StepStatus }) {
  return <StatusBadge status={status === "started" ? "active" : status} label={status} />;
}

/** The newest log lines among the events the page has seen. */
function LiveLogs({ timeline, title }: { timeline: Timeline; title: string }) {
  const formatTime = useTimeFormat();
  const logs = timeline.filter((t) => t.event.type === "agent:log").slice(-20);
  return (
    <TitledCard id="live-logs" title={title}>
      <ol className="font-mono text-xs" data-testid="live-logs">
        {logs.map(({ id, event }) =>
          event.type === "agent:log" ? (
            <li key={id}>{`${formatTime(event.at)} ${event.level} ${event.message}`}</li>
          ) : null,
        )}
      </ol>
    </TitledCard>
  );
}

/** A finished run's logs, from the database, behind a disclosure. */
function RunLogs({ page }: { page: LogPage | undefined }) {
  const formatTime = useTimeFormat();
  return (
    <details className="card" data-testid="run-logs">
      <summary className="min-h-6 cursor-pointer font-semibold">
        Logs{page ? ` (${page.logs.length}${page.nextCursor ? "+" : ""})` : ""}
      </summary>
      <ol className="mt-2 font-mono text-xs">
        {page?.logs.map((log) => (
          <li key={log.id}>{`${formatTime(log.at)} ${log.level} [attempt ${log.attempt}] ${log.message}`}</li>
        ))}
      </ol>
    </details>
  );
}

/** A card with a heading that names it for assistive technology. */
function TitledCard({ id, title, children }: { id: string; title: string; children: ReactNode }) {
  return (
    <section className="card" aria-labelledby={id}>
      <h2 id={id} className="mb-2 font-semibold">
        {title}
      </h2>
      {children}
    </section>
  );
}
