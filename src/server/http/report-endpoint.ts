import type { IncomingMessage, ServerResponse } from "node:http";
import type { ExternalReportService } from "../agents/external-report-service";
import type { AuthService } from "../auth/auth-service";
import { PulseError } from "../errors";
import type { Logger } from "../logger";
import { answerError, bearer, ERROR_STATUS, readBody } from "./json-request";
import { KeyedRateLimit } from "./keyed-rate-limit";

export interface ReportEndpointOptions {
  auth: Pick<AuthService, "verifyReportToken">;
  reports: ExternalReportService;
  logger: Logger;
  /** Reports one run may send per second (bursts up to twice this). */
  reportsPerSecond: number;
  maxBodyBytes: number;
}

const PATH = /^\/api\/runs\/([^/?#]{1,200})\/events\/?(?:\?.*)?$/;

/**
 * `POST /api/runs/:runId/events`: an external agent, in any language, reports one event of
 * its run per call, with the run's report token as a bearer token. Answers 202 with the
 * event's id as soon as it is stored and on its way to every dashboard; every refusal is a
 * JSON `{ error: { code, message } }` with the matching HTTP status.
 */
export class ReportEndpoint {
  private readonly perRun: KeyedRateLimit;

  constructor(private readonly options: ReportEndpointOptions) {
    this.perRun = new KeyedRateLimit(options.reportsPerSecond);
  }

  /** The run id in a report URL, or null when the URL is not one. */
  static match(url: string | undefined): string | null {
    const found = url ? PATH.exec(url) : null;
    if (!found) return null;
    try {
      return decodeURIComponent(found[1]!);
    } catch {
      return "";
    }
  }

  async handle(req: IncomingMessage, res: ServerResponse, runId: string): Promise<void> {
    try {
      if (req.method !== "POST") {
        res.setHeader("Allow", "POST");
        return answerError(res, 405, "METHOD_NOT_SUPPORTED", "use POST to report an event");
      }
      const grant = await this.options.auth.verifyReportToken(bearer(req.headers.authorization));
      if (!grant) {
        res.setHeader("WWW-Authenticate", 'Bearer realm="pulse", error="invalid_token"');
        return answerError(
          res,
          401,
          "UNAUTHORIZED",
          "a valid run report token is required (Authorization: Bearer <token>)",
        );
      }
      // A token used on another run's URL learns nothing and spends nothing of its run's rate.
      if (runId !== grant.runId) return answerError(res, 404, "NOT_FOUND", "run not found");
      const retryAfter = this.perRun.take(grant.runId);
      if (retryAfter > 0) {
        res.setHeader("Retry-After", String(retryAfter));
        return answerError(
          res,
          429,
          "TOO_MANY_REQUESTS",
          `at most ${this.options.reportsPerSecond} reports per second per run`,
        );
      }
      if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
        return answerError(res, 415, "UNSUPPORTED_MEDIA_TYPE", "content-type: must be application/json");
      }
      const raw = await readBody(req, this.options.maxBodyBytes);
      if (raw === null) {
        res.setHeader("Connection", "close");
        return answerError(res, 413, "PAYLOAD_TOO_LARGE", `body: at most ${this.options.maxBodyBytes} bytes`);
      }
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        return answerError(res, 400, "BAD_REQUEST", "body: must be one JSON object");
      }
      const published = await this.options.reports.report(grant, runId, body);
      res.writeHead(202, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify({ id: published.id, seq: published.event.seq }));
    } catch (error) {
      if (error instanceof PulseError) return answerError(res, ERROR_STATUS[error.code], error.code, error.message);
      this.options.logger.error({ err: error, runId }, "report failed");
      answerError(res, 500, "INTERNAL_SERVER_ERROR", "the report could not be stored; try again");
    }
  }
}
