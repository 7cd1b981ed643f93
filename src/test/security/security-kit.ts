import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import WebSocket from "ws";
import { TRPC_PATH } from "../../server/http-server";
import type { AppRouter } from "../../server/trpc/root";
import type { TestPulse } from "../harness";

export { AttackLog, FIGURES_DIR, type AttackTally } from "./attack-log";

/**
 * Tools for the security suite: a raw WebSocket client that speaks tRPC's wire protocol
 * (to send what a real client never would), a heap reading after a full garbage
 * collection, and small helpers for HTTP calls.
 */

/** A message the server sent on a raw socket, parsed when it was JSON. */
export type Frame = { text: string; json: any };

/**
 * A WebSocket to Pulse's tRPC endpoint driven by hand: it sends exactly the frames a test
 * gives it and keeps every frame it receives. It answers the server's keep-alive PINGs
 * unless told to play dead.
 */
export class RawSocket {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  answerPings = true;

  constructor(readonly ws: WebSocket) {
    this.opened = new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) =>
        reject(upgradeRefused(res.statusCode ?? 0, res.headers["retry-after"])),
      );
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) =>
      ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on("error", () => {});
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? "" : data.toString();
      if (text === "PING") {
        if (this.answerPings && ws.readyState === WebSocket.OPEN) ws.send("PONG");
        return;
      }
      let json: any = null;
      try {
        json = JSON.parse(text);
      } catch {
        // Kept as text.
      }
      this.frames.push({ text, json });
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: unknown): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(typeof frame === "string" || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** The connectionParams frame wsLink sends first. */
  authenticate(token: unknown): void {
    this.send({ method: "connectionParams", data: { token } });
  }

  request(
    id: number | string,
    method: "query" | "mutation" | "subscription",
    path: string,
    input?: unknown,
    lastEventId?: string,
  ): void {
    this.send({ id, method, params: { path, input, ...(lastEventId ? { lastEventId } : {}) } });
  }

  /** Frames answering request `id`. */
  answers(id: number | string): Frame[] {
    return this.frames.filter((f) => f.json?.id === id);
  }

  /** Resolves with the first frame (after `from`) that matches, or throws after the timeout. */
  async waitFor(predicate: (frame: Frame) => boolean, what: string, timeoutMs = 30_000, from = 0): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.frames.slice(from).find(predicate);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(
      `timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.slice(-5).map((f) => f.text.slice(0, 200)))}`,
    );
  }

  /** The close code and reason, or a failure when the socket is still open after `timeoutMs`. */
  async closedWithin(timeoutMs = 30_000): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the socket was still open after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}

/** The error `RawSocket.opened` rejects with when the server answered the upgrade with an HTTP status. */
export type UpgradeRefused = Error & { status: number; retryAfter: string | undefined };

function upgradeRefused(status: number, retryAfter: string | undefined): UpgradeRefused {
  return Object.assign(new Error(`upgrade refused with HTTP ${status}`), { status, retryAfter });
}

export interface RawSocketOptions {
  /** Open the URL wsLink opens when it has connectionParams (`?connectionParams=1`). */
  params?: boolean;
  /** Extra query string, e.g. a token where it must not be. */
  query?: string;
  headers?: Record<string, string>;
  origin?: string;
  perMessageDeflate?: boolean;
  maxPayload?: number;
}

export function rawSocket(app: TestPulse, options: RawSocketOptions = {}): RawSocket {
  const query = [options.params === false ? "" : "connectionParams=1", options.query ?? ""].filter(Boolean).join("&");
  const ws = new WebSocket(`${app.wsUrl}${query ? `?${query}` : ""}`, {
    headers: options.headers ?? {},
    ...(options.origin ? { origin: options.origin } : {}),
    perMessageDeflate: options.perMessageDeflate ?? false,
    maxPayload: options.maxPayload ?? 100 * 1024 * 1024,
  });
  return new RawSocket(ws);
}

/** The HTTP status an upgrade was refused with, or 101 when it opened. */
export async function upgradeStatus(socket: RawSocket): Promise<number> {
  try {
    await socket.opened;
    return 101;
  } catch (error) {
    if (typeof (error as Partial<UpgradeRefused>).status === "number") return (error as UpgradeRefused).status;
    throw error;
  } finally {
    socket.close();
  }
}

let collectGarbage: (() => void) | undefined;

/** Heap in use after a full collection, so a comparison measures what is retained. */
export function heapUsedAfterGc(): number {
  if (!collectGarbage) {
    setFlagsFromString("--expose-gc");
    collectGarbage = runInNewContext("gc") as () => void;
  }
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/** The error code a tRPC error frame or client error carries. */
export function errorCode(value: any): string | undefined {
  return value?.error?.data?.code ?? value?.data?.code ?? value?.shape?.data?.code;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A tRPC client over plain HTTP (one request per call), with a bearer token or none. */
export function httpClient(app: TestPulse, token?: string) {
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${app.baseUrl}${TRPC_PATH}`,
        headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
      }),
    ],
  });
}

/** The error a call failed with, or null when it succeeded. */
export async function failureOf(call: Promise<unknown>): Promise<TRPCClientError<AppRouter> | null> {
  try {
    await call;
    return null;
  } catch (error) {
    if (error instanceof TRPCClientError) return error as TRPCClientError<AppRouter>;
    throw error;
  }
}

/** What an agent in any language sends: `curl -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{...}'`. */
export async function postRunEvent(
  app: TestPulse,
  runId: string,
  token: string | null,
  body: unknown,
  headers: Record<string, string> = {},
  method = "POST",
) {
  const res = await fetch(`${app.baseUrl}/api/runs/${encodeURIComponent(runId)}/events`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    ...(method === "GET" ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Kept as text.
  }
  return { status: res.status, json, text, headers: res.headers };
}
