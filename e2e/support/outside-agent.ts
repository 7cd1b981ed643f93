/**
 * An external agent played by a test: it reports its run's events over HTTP with the run's
 * token, as an agent outside Pulse would, so the test decides when the run moves and ends.
 */
export class OutsideAgent {
  constructor(
    private readonly baseUrl: string,
    private readonly runId: string,
    private readonly token: string,
  ) {}

  /** Reports one event; waits out the run's report rate (429) as a well-behaved agent does. */
  async report(body: Record<string, unknown>): Promise<void> {
    for (;;) {
      const res = await fetch(`${this.baseUrl}/api/runs/${encodeURIComponent(this.runId)}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${this.token}` },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (res.status === 202) return;
      if (res.status !== 429) throw new Error(`report ${JSON.stringify(body)} answered ${res.status}: ${text}`);
      await new Promise((r) => setTimeout(r, Number(res.headers.get("retry-after") ?? 1) * 1000));
    }
  }
}
