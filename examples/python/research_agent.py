"""An example external agent: researches a topic (simulated) and reports every step to Pulse.

    python3 examples/python/research_agent.py --pulse http://localhost:3000 --run RUN_ID --token TOKEN

The run id and its report token come from whoever started the run (``agent.run`` answers both
for a role listed in EXTERNAL_AGENT_ROLES); they may also be given as PULSE_URL, PULSE_RUN_ID
and PULSE_REPORT_TOKEN. Replace ``research`` with your agent's work.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from pulse_agent import PulseReportError, PulseRun

SOURCES = ["company website", "annual report", "press coverage"]


def research(run: PulseRun, topic: str, pause: float) -> None:
    run.active()
    run.log("info", f"researching {topic}")
    for index, source in enumerate(SOURCES):
        with run.step(f"read-{index + 1}", f"Read the {source}"):
            run.progress(10 + 25 * index, f"Reading the {source}")
            time.sleep(pause)
            run.output(f"- {source}: notes on {topic}\n")
    with run.step("summary", "Write the summary"):
        run.progress(90, "Writing the summary")
        run.output(f"\n{topic}: three sources read, summary ready.\n")
    run.completed()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulse", default=os.environ.get("PULSE_URL", "http://localhost:3000"))
    parser.add_argument("--run", default=os.environ.get("PULSE_RUN_ID"))
    parser.add_argument("--token", default=os.environ.get("PULSE_REPORT_TOKEN"))
    parser.add_argument("--topic", default="Acme Logistics")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds of simulated work per source")
    args = parser.parse_args()
    if not args.run or not args.token:
        parser.error("--run and --token (or PULSE_RUN_ID and PULSE_REPORT_TOKEN) are required")

    run = PulseRun(args.pulse, args.run, args.token)
    try:
        research(run, args.topic, args.pause)
    except PulseReportError as error:
        print(f"Pulse refused a report: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # the agent's own failure: say so on the run, then exit non-zero
        run.failed(str(error) or type(error).__name__)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
