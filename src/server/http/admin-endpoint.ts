import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { ProductAccounts } from "../auth/product-accounts";
import { describeInputIssues, PulseError } from "../errors";
import { idSchema } from "../events/schema";
import type { Logger } from "../logger";
import { text } from "../validation";
import { answerError, bearer, ERROR_STATUS, readBody } from "./json-request";

export interface AdminEndpointOptions {
  accounts: ProductAccounts;
  /** `PULSE_ADMIN_KEY`; without one every admin call is 404, as if the API did not exist. */
  adminKey: string | undefined;
  logger: Logger;
  maxBodyBytes: number;
  /** Lifetime of a minted token when the request names none. */
  defaultTtlSeconds: number;
}

const PREFIX = "/api/admin/";
const externalId = text({ min: 1, max: 200, trim: true });
const tenantBody = z.strictObject({ name: text({ min: 1, max: 100, trim: true }).optional() });
const userBody = z.strictObject({ email: z.email({ message: "must be an email address" }).max(254).optional() });

/** One route: its method, its path's pattern, and what it does with the captured ids and the body. */
interface AdminRoute {
  method: "POST" | "PUT";
  pattern: RegExp;
  run(ids: string[], body: unknown): Promise<unknown>;
}

/**
 * The admin API, for the backend of a product that embeds Pulse: JSON over HTTP under
 * `/api/admin/`, authenticated by `Authorization: Bearer <PULSE_ADMIN_KEY>`. It keeps the
 * product's tenants and users by the product's own ids and mints short-lived tokens for
 * them (see `ProductAccounts`). Never for browsers: no CORS answer is ever given here.
 */
export class AdminEndpoint {
  private readonly key: Buffer | null;
  private readonly routes: AdminRoute[];

  constructor(private readonly options: AdminEndpointOptions) {
    this.key = options.adminKey ? digest(options.adminKey) : null;
    const { accounts } = options;
    const mintBody = z.strictObject({
      tenant: z.strictObject({ id: externalId, name: tenantBody.shape.name }),
      user: z.strictObject({ id: externalId, email: userBody.shape.email }),
      access: z.enum(["read", "write"]).default("read"),
      runId: idSchema.optional(),
      ttlSeconds: z.number().int().default(options.defaultTtlSeconds),
    });
    this.routes = [
      {
        method: "PUT",
        pattern: /^tenants\/([^/]+)$/,
        run: ([id], body) =>
          accounts.upsertTenant({ id: parseWith(externalId, id, "tenant id"), ...parseWith(tenantBody, body) }),
      },
      {
        method: "PUT",
        pattern: /^tenants\/([^/]+)\/users\/([^/]+)$/,
        run: async ([tenant, user], body) => {
          const { tenantId } = await accounts.upsertTenant({ id: parseWith(externalId, tenant, "tenant id") });
          return {
            tenantId,
            ...(await accounts.upsertUser(tenantId, {
              id: parseWith(externalId, user, "user id"),
              ...parseWith(userBody, body),
            })),
          };
        },
      },
      { method: "POST", pattern: /^tokens$/, run: (_, body) => accounts.mint(parseWith(mintBody, body)) },
    ];
  }

  static matches(url: string | undefined): boolean {
    return url?.startsWith(PREFIX) === true;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (!this.key)
        return answerError(res, 404, "NOT_FOUND", "the admin API is off: set PULSE_ADMIN_KEY to turn it on");
      if (!this.authorized(req)) {
        res.setHeader("WWW-Authenticate", 'Bearer realm="pulse-admin"');
        return answerError(res, 401, "UNAUTHORIZED", "the admin API needs Authorization: Bearer <PULSE_ADMIN_KEY>");
      }
      const path = new URL(req.url ?? "/", "http://localhost").pathname.slice(PREFIX.length);
      const found = this.route(req.method, path);
      if (!found)
        return answerError(
          res,
          404,
          "NOT_FOUND",
          "no such admin route: PUT tenants/:id, PUT tenants/:id/users/:id, POST tokens",
        );
      if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
        return answerError(res, 415, "UNSUPPORTED_MEDIA_TYPE", "content-type: must be application/json");
      }
      const raw = await readBody(req, this.options.maxBodyBytes);
      if (raw === null)
        return answerError(res, 413, "PAYLOAD_TOO_LARGE", `body: at most ${this.options.maxBodyBytes} bytes`);
      let body: unknown;
      try {
        body = raw.trim() === "" ? {} : JSON.parse(raw);
      } catch {
        return answerError(res, 400, "BAD_REQUEST", "body: must be one JSON object");
      }
      const answer = await found.route.run(found.ids, body);
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(answer));
    } catch (error) {
      if (error instanceof PulseError) return answerError(res, ERROR_STATUS[error.code], error.code, error.message);
      this.options.logger.error({ err: error }, "admin call failed");
      answerError(res, 500, "INTERNAL_SERVER_ERROR", "something went wrong on the server; it has been logged");
    }
  }

  /** Compared as digests in constant time, so the answer's timing says nothing about the key. */
  private authorized(req: IncomingMessage): boolean {
    const token = bearer(req.headers.authorization);
    return token !== undefined && this.key !== null && timingSafeEqual(digest(token), this.key);
  }

  private route(method: string | undefined, path: string): { route: AdminRoute; ids: string[] } | null {
    for (const route of this.routes) {
      const match = route.pattern.exec(path);
      if (match && route.method === method) return { route, ids: match.slice(1).map(decodeSegment) };
    }
    return null;
  }
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return "";
  }
}

/** The value as the schema reads it, or BAD_REQUEST naming the field. */
function parseWith<T extends z.ZodType>(schema: T, value: unknown, field?: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const message = describeInputIssues(result.error.issues);
  throw new PulseError("BAD_REQUEST", field ? `${field}: ${message.replace(/^input: /, "")}` : message);
}
