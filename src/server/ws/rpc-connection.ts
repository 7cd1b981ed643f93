import {
  callTRPCProcedure,
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  isTrackedEnvelope,
  transformTRPCResponse,
  TRPCError,
  type AnyTRPCRouter,
  type TRPCProcedureType,
} from "@trpc/server";
import { parseConnectionParamsFromUnknown } from "@trpc/server/http";
import { parseTRPCMessage, type TRPCResponseMessage, type TRPCResultMessage } from "@trpc/server/rpc";
import { requestIdOf, type ConnectionGuard, type RefusalAnswer } from "./connection-guard";
import { trackedDataFrame } from "./frame-encoder";
import type { FrameReceiver } from "./guarded-web-socket";
import { SubscriptionWire, type WireSocket } from "./subscription-wire";

/** What a connection needs of its socket: `GuardedWebSocket`. */
export interface RpcSocket extends WireSocket {
  close(code?: number, reason?: string): void;
}

export interface RpcHandlerOptions<TContext> {
  router: AnyTRPCRouter;
  /**
   * Makes a connection's context, once: at once, or with the client's `connectionParams`
   * when its URL says they come first (wsLink's `connectionParams` option). A throw ends
   * the connection with the error.
   */
  createContext(guard: ConnectionGuard, connectionParams: Record<string, string | undefined> | null): Promise<TContext>;
  /** Told about every error a call answers with (after the error shape is sent). */
  onError?(error: TRPCError, path: string | undefined, ctx: TContext | undefined): void;
}

type RequestId = string | number;

/** One request as it arrived, and the start of every message that answers it. */
interface Request {
  id: RequestId;
  jsonrpc: "2.0" | undefined;
  type: TRPCProcedureType;
  path: string;
  input: unknown;
  batchIndex: number;
}

const OPEN = 1;

/**
 * tRPC's WebSocket protocol, served over a router's procedures through tRPC's public API
 * (`callTRPCProcedure`, the error shape and response transform), one small object per
 * connection. tRPC's own handler (`@trpc/server/adapters/ws`) keeps, per connection and per
 * subscription, closures, abort controllers, promise races and a using-context; at ten
 * thousand idle dashboards that was a third of the server's heap. Here a connection holds
 * its context and its subscriptions' wires, and a subscription's live events reach its
 * socket through its `SubscriptionWire`, which knows its request id from the start.
 *
 * What a client sees is tRPC's protocol as wsLink speaks it: `connectionParams` first when
 * the URL asks for them, PING/PONG keep-alive, batched requests, `started`, tracked `data`,
 * `stopped` and error messages with the router's error shape, `subscription.stop`.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export class RpcHandler<TContext> {
  readonly router: AnyTRPCRouter;

  constructor(readonly options: RpcHandlerOptions<TContext>) {
    this.router = options.router;
  }

  /** Serves one socket; the guard decides on every frame before it is read. */
  connect(socket: RpcSocket, guard: ConnectionGuard, url: string | undefined): RpcConnection<TContext> {
    const awaitsParams = new URL(url ?? "/", "http://localhost").searchParams.get("connectionParams") === "1";
    return new RpcConnection(socket, guard, this, awaitsParams);
  }

  /** The message for an error answering `request` (or a frame that was not one: `null`), told to `onError`. */
  errorMessage(error: TRPCError, request: (Pick<Request, "id"> & Partial<Request>) | null, ctx: TContext | undefined): TRPCResponseMessage {
    this.options.onError?.(error, request?.path, ctx);
    const shape = getTRPCErrorShape({
      config: this.router._def._config,
      error,
      type: request?.type ?? "unknown",
      path: request?.path,
      input: request?.input,
      ctx,
    });
    return { id: request?.id ?? null, ...(request?.jsonrpc ? { jsonrpc: request.jsonrpc } : {}), error: shape } as TRPCResponseMessage;
  }

  encode(message: TRPCResponseMessage): string {
    return JSON.stringify(transformTRPCResponse(this.router._def._config, message));
  }
}

/**
 * One WebSocket connection's side of the protocol. Its frames arrive through `receive`
 * (the socket calls it directly: no listener per socket); its subscriptions' wires are
 * kept by its guard, which caps and ends them.
 */
export class RpcConnection<TContext> implements FrameReceiver, RefusalAnswer {
  /** The context, once the connection has one; null until its `connectionParams` arrive. */
  private context: Promise<TContext | TRPCError> | null;
  private ctx: TContext | undefined;
  /** True once the context is made (or failed): requests are served at once from then on. */
  private settled = false;

  constructor(
    private readonly socket: RpcSocket,
    private readonly guard: ConnectionGuard,
    private readonly handler: RpcHandler<TContext>,
    awaitsConnectionParams: boolean,
  ) {
    this.context = awaitsConnectionParams ? null : this.createContext(null);
  }

  /** A frame from the client: charged before it is read, whatever it holds, so no kind of frame floods for free. */
  receive(data: unknown, isBinary: boolean): void {
    if (!this.guard.received()) return;
    const text = isBinary || !Buffer.isBuffer(data) ? null : data.toString("utf8");
    if (!this.guard.charge()) {
      this.refuseOverRate(text);
      return;
    }
    if (text === null) {
      this.respondError(new TRPCError({ code: "UNPROCESSABLE_CONTENT", message: "frames must be JSON text" }), null);
      return;
    }
    if (text === "PONG") return;
    if (text === "PING") {
      this.send("PONG");
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      this.respondError(new TRPCError({ code: "PARSE_ERROR", message: "a frame must be JSON", cause }), null);
      return;
    }
    const requests: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
    if (!this.guard.allows(requests, this)) return;
    if (this.context === null) {
      this.context = this.createContext(parsed);
      return;
    }
    // Requests are served in the order they came, once the connection knows who it is.
    if (this.settled) this.handleAll(requests);
    else void this.context.then(() => this.handleAll(requests));
  }

  /**
   * A frame over the message rate is read only to learn which request ids to answer (the
   * flood close bounds how many such frames are read); the subscriptions it stops are
   * stopped all the same, since that frees what they hold.
   */
  private refuseOverRate(text: string | null): void {
    const requests = requestsOf(text);
    const asked = requests.length > this.guard.limits.maxBatch ? requests : requests.filter((request) => !this.stopped(request));
    this.guard.refuseOverRate(asked.map(requestIdOf), this);
  }

  /** Stops the subscription `request` names if it is a `subscription.stop`; false for any other request. */
  private stopped(request: unknown): boolean {
    if (!isRecord(request) || request.method !== "subscription.stop") return false;
    const id = requestIdOf(request);
    if (typeof id === "string" || typeof id === "number") this.guard.subscription(id)?.close();
    return true;
  }

  private handleAll(requests: unknown[]): void {
    for (let i = 0; i < requests.length; i++) this.handle(requests[i], i);
  }

  private createContext(paramsMessage: unknown): Promise<TContext | TRPCError> {
    return (async () => this.handler.options.createContext(this.guard, paramsMessage === null ? null : connectionParamsOf(paramsMessage)))().then(
      (ctx) => {
        this.settled = true;
        return (this.ctx = ctx);
      },
      (cause: unknown) => {
        this.settled = true;
        const error = getTRPCErrorFromUnknown(cause);
        this.respond(this.handler.errorMessage(error, null, undefined));
        // As tRPC's handler does: the client learns why, then the connection ends.
        setImmediate(() => this.socket.close());
        return error;
      },
    );
  }

  private handle(raw: unknown, batchIndex: number): void {
    let message: ReturnType<typeof parseTRPCMessage>;
    try {
      message = parseTRPCMessage(raw, this.handler.router._def._config.transformer);
    } catch (cause) {
      this.respondError(new TRPCError({ code: "PARSE_ERROR", message: "not a tRPC request", cause }), null);
      return;
    }
    const { id, jsonrpc } = message;
    if (id === null) {
      this.respondError(new TRPCError({ code: "PARSE_ERROR", message: "`id` is required" }), null);
      return;
    }
    if (message.method === "subscription.stop") {
      this.stopped(message);
      return;
    }
    const { path, lastEventId } = message.params;
    let { input } = message.params;
    // wsLink resends a tracked subscription's last id beside its input; procedures read it from the input.
    if (lastEventId !== undefined) input = isRecord(input) ? { ...input, lastEventId } : (input ?? { lastEventId });
    const request: Request = { id, jsonrpc, type: message.method, path, input, batchIndex };
    if (request.type === "subscription") {
      if (this.guard.subscription(id)) {
        this.respondError(new TRPCError({ code: "BAD_REQUEST", message: `Duplicate id ${id}` }), request);
        return;
      }
      const wire = new SubscriptionWire(this.socket, id, jsonrpc);
      try {
        this.guard.subscribe(wire);
      } catch (cause) {
        this.respondError(getTRPCErrorFromUnknown(cause), request);
        return;
      }
      void this.subscribe(request, wire);
    } else {
      void this.call(request);
    }
  }

  /** A query or mutation: one answer. */
  private async call(request: Request): Promise<void> {
    try {
      const data: unknown = await this.procedure(request);
      if (isAsyncIterable(data)) {
        throw new TRPCError({ code: "UNSUPPORTED_MEDIA_TYPE", message: `Cannot return an async iterable from a ${request.type} procedure with WebSockets` });
      }
      this.answer(request, { type: "data", data });
    } catch (cause) {
      this.respondError(getTRPCErrorFromUnknown(cause), request);
    }
  }

  /**
   * A subscription: `started`, then each item the procedure's iterator yields, until it ends
   * (`stopped`), fails (the error), or its wire closes (stopped by the client, the session
   * ended, the socket went). A feed that goes live hands its events to the wire and its
   * iterator waits, so an idle subscriber costs its wire and its feed, nothing here.
   */
  private async subscribe(request: Request, wire: SubscriptionWire): Promise<void> {
    let iterator: AsyncIterator<unknown> | undefined;
    let finished = false;
    try {
      const iterable: unknown = await this.procedure(request);
      if (!isAsyncIterable(iterable)) {
        throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: `Subscription ${request.path} did not return an async iterable` });
      }
      iterator = iterable[Symbol.asyncIterator]();
      if (!wire.ready || this.socket.readyState !== OPEN) return;
      this.answer(request, { type: "started" });
      // The feed opens in its first request for an item, and takes this wire as its own then.
      const first = iterator;
      let next = this.guard.opening(wire, () => first.next());
      for (;;) {
        const result = await next;
        if (result.done) {
          finished = true;
          break;
        }
        // Nothing is built for a reader over its send-buffer cap (its socket is terminated then).
        if (!wire.ready || !this.writable()) break;
        this.respondItem(request, wire, result);
        next = iterator.next();
      }
      this.answer(request, { type: "stopped" });
    } catch (cause) {
      finished = true;
      this.respondError(getTRPCErrorFromUnknown(cause), request);
    } finally {
      this.guard.unsubscribe(wire);
      if (!finished) await iterator?.return?.().catch(() => undefined);
    }
  }

  private async procedure(request: Request): Promise<unknown> {
    const ctx = await this.context;
    if (ctx instanceof TRPCError) throw ctx;
    const { path, type, input, batchIndex } = request;
    return callTRPCProcedure({ router: this.handler.router, path, type, getRawInput: async () => input, ctx, signal: undefined, batchIndex });
  }

  /**
   * A data message; a `tracked(id, item)` carries its id twice, as tRPC's handler sends it.
   * The item is taken out of its iterator result once sent: the subscription's frame keeps
   * that result while it waits for the next one, and an idle subscriber's last item is its
   * snapshot, however large.
   */
  private respondItem(request: Request, wire: SubscriptionWire, result: { value: unknown }): void {
    const value = result.value;
    result.value = undefined;
    if (isTrackedEnvelope(value)) {
      const [trackedId, data] = value;
      this.send(trackedDataFrame(wire.prefix, String(trackedId), data));
    } else {
      this.answer(request, { type: "data", data: value });
    }
  }

  /** A result message for `request`, echoing its JSON-RPC version when it sent one. */
  private answer(request: Request, result: TRPCResultMessage<unknown>["result"]): void {
    this.respond({ id: request.id, ...(request.jsonrpc ? { jsonrpc: request.jsonrpc } : {}), result });
  }

  /** Answers the requests of a frame its guard refused, with the router's error shape. */
  refuse(ids: readonly (string | number)[], error: TRPCError): void {
    if (ids.length === 0) this.respondError(error, null);
    for (const id of ids) this.respondError(error, { id });
  }

  private respondError(error: TRPCError, request: (Pick<Request, "id"> & Partial<Request>) | null): void {
    this.respond(this.handler.errorMessage(error, request, this.ctx));
  }

  private respond(message: TRPCResponseMessage): void {
    if (this.writable()) this.socket.send(this.handler.encode(message));
  }

  private send(frame: string): void {
    if (this.writable()) this.socket.send(frame);
  }

  /** Whether a frame may be built for the socket: open, and its reader within the send-buffer cap. */
  private writable(): boolean {
    return this.socket.readyState === OPEN && this.socket.hasRoom?.() !== false;
  }
}

/** The requests of a frame's text, as they arrived: none when it is not JSON. */
function requestsOf(text: string | null): unknown[] {
  if (text === null) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}

/** The `connectionParams` of wsLink's first message, or a PARSE_ERROR. */
function connectionParamsOf(message: unknown): Record<string, string | undefined> | null {
  if (!isRecord(message)) throw new TRPCError({ code: "PARSE_ERROR", message: "Malformed TRPCConnectionParamsMessage" });
  return parseConnectionParamsFromUnknown(message.data);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}
