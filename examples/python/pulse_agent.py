"""Report an agent run to Pulse from Python, with the standard library only.

An agent outside Pulse (a role listed in EXTERNAL_AGENT_ROLES, or in a configuration's
`externalAgentRoles`) reports its run over HTTP: one POST per event to
``/api/runs/<run id>/events`` with the run's report token, which starting the run returned
(``agent.run``, ``agent.retry`` or ``agent.runChain`` answer ``reportToken``). Every open
dashboard of the tenant shows each event as it arrives. docs/AGENTS.md lists every event.

    run = PulseRun("http://localhost:3000", run_id, report_token)
    run.active()
    with run.step("read", "Read the sources"):
        run.progress(40, "Reading sources")
        run.output("# Findings\\n")
    run.completed()

A report Pulse refuses raises PulseReportError with its code and message; a report over the
run's rate (429) or one that meets a restarting server is sent again, a few times.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from typing import Any, Iterator, Optional

__all__ = ["PulseRun", "PulseReportError"]

LOG_LEVELS = ("debug", "info", "warn", "error")


class PulseReportError(Exception):
    """Pulse refused a report: ``code`` is its error code (BAD_REQUEST, UNAUTHORIZED, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class PulseRun:
    """One run of an external agent, reported to Pulse event by event."""

    def __init__(self, base_url: str, run_id: str, token: str, *, attempt: Optional[int] = None,
                 timeout: float = 10.0, tries: int = 5) -> None:
        self.url = f"{base_url.rstrip('/')}/api/runs/{urllib.parse.quote(run_id, safe='')}/events"
        self.token = token
        self.attempt = attempt
        self.timeout = timeout
        self.tries = tries

    # Lifecycle -------------------------------------------------------------------------

    def active(self) -> dict:
        """The agent started working on the run (its status becomes "active")."""
        return self.report({"type": "agent:active"})

    def progress(self, percent: float, message: str = "", phase: Optional[str] = None) -> dict:
        """Progress from 0 to 100 with a message people can read (at most 500 characters)."""
        event: dict[str, Any] = {"type": "agent:progress", "progress": percent, "message": message}
        if phase is not None:
            event["phase"] = phase
        return self.report(event)

    def completed(self) -> dict:
        """The run is done."""
        return self.report({"type": "agent:completed"})

    def failed(self, error: str, will_retry: bool = False) -> dict:
        """The run failed; ``will_retry`` says the agent will try again (shown as retrying)."""
        return self.report({"type": "agent:failed", "error": error, "willRetry": will_retry})

    # What the run produces -------------------------------------------------------------

    def output(self, chunk: str) -> dict:
        """A piece of the run's streamed output (at most 16,384 characters per report)."""
        return self.report({"type": "agent:output", "chunk": chunk})

    def log(self, level: str, message: str) -> dict:
        """A line of the run's log: level debug, info, warn or error."""
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
        return self.report({"type": "agent:log", "level": level, "message": message})

    @contextmanager
    def step(self, step_id: str, name: str) -> Iterator[None]:
        """Reports a named step as started, then completed, or failed with the exception's text."""
        self.report({"type": "agent:step", "stepId": step_id, "name": name, "status": "started"})
        try:
            yield
        except BaseException as error:
            self.report({"type": "agent:step", "stepId": step_id, "name": name, "status": "failed",
                         "error": (str(error) or type(error).__name__)[:2000]})
            raise
        self.report({"type": "agent:step", "stepId": step_id, "name": name, "status": "completed"})

    # Transport -------------------------------------------------------------------------

    def report(self, event: dict) -> dict:
        """Sends one event; returns Pulse's answer ``{"id": ..., "seq": ...}``."""
        if self.attempt is not None:
            event = {**event, "attempt": self.attempt}
        body = json.dumps(event).encode("utf-8")
        for tries_left in range(self.tries - 1, -1, -1):
            request = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            })
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as error:
                refused = _refusal(error)
                if error.code in (429, 503) and tries_left > 0:
                    time.sleep(_retry_after(error))
                    continue
                raise refused from None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                # Pulse restarting or a network blip: the same report again, a moment later.
                if tries_left == 0:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")


def _refusal(error: urllib.error.HTTPError) -> PulseReportError:
    try:
        answer = json.loads(error.read() or b"{}").get("error", {})
    except ValueError:
        answer = {}
    return PulseReportError(error.code, answer.get("code", "HTTP_ERROR"), answer.get("message", error.reason or ""))


def _retry_after(error: urllib.error.HTTPError) -> float:
    try:
        return min(10.0, max(0.1, float(error.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0
