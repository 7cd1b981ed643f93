import type { IncomingMessage, ServerResponse } from "node:http";
import type { ExternalReportService } from "../agents/external-report-service";
import type { AuthService } from "../auth/auth-service";
import { PulseError, type PulseErrorCode } from "../errors";
import type { Logger } from "../logger";
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

const STATUS: Record<PulseErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_MANY_REQUESTS: 429,
};

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
        return this.fail(res, 405, "METHOD_NOT_SUPPORTED", "use POST to report an event");
      }
      const grant = await this.options.auth.verifyReportToken(bearer(req.headers.authorization));
      if (!grant) {
        res.setHeader("WWW-Authenticate", 'Bearer realm="pulse", error="invalid_token"');
        return this.fail(res, 401, "UNAUTHORIZED", "a valid run report token is required (Authorization: Bearer <token>)");
      }
      // A token used on another run's URL learns nothing and spends nothing of its run's rate.
      if (runId !== grant.runId) return this.fail(res, 404, "NOT_FOUND", "run not found");
      const retryAfter = this.perRun.take(grant.runId);
      if (retryAfter > 0) {
        res.setHeader("Retry-After", String(retryAfter));
        return this.fail(res, 429, "TOO_MANY_REQUESTS", `at most ${this.options.reportsPerSecond} reports per second per run`);
      }
      if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
        return this.fail(res, 415, "UNSUPPORTED_MEDIA_TYPE", "content-type: must be application/json");
      }
      const raw = await readBody(req, this.options.maxBodyBytes);
      if (raw === null) {
        res.setHeader("Connection", "close");
        return this.fail(res, 413, "PAYLOAD_TOO_LARGE", `body: at most ${this.options.maxBodyBytes} bytes`);
      }
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        return this.fail(res, 400, "BAD_REQUEST", "body: must be one JSON object");
      }
      const published = await this.options.reports.report(grant, runId, body);
      res.writeHead(202, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify({ id: published.id, seq: published.event.seq }));
    } catch (error) {
      if (error instanceof PulseError) return this.fail(res, STATUS[error.code], error.code, error.message);
      this.options.logger.error({ err: error, runId }, "report failed");
      this.fail(res, 500, "INTERNAL_SERVER_ERROR", "the report could not be stored; try again");
    }
  }

  private fail(res: ServerResponse, status: number, code: string, message: string): void {
    if (res.headersSent) return void res.end();
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify({ error: { code, message } }));
  }
}

function bearer(header: string | undefined): string | undefined {
  return header?.match(/^Bearer\s+(\S+)$/i)?.[1];
}

/** The body as text, or null as soon as it passes `limit` bytes (the rest is never buffered). */
function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!done) resolve(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", (error) => {
      if (!done) reject(error);
    });
  });
}
