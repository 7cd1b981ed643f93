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
import { jsonEncoder } from "@trpc/server/adapters/ws";
import { parseConnectionParamsFromUnknown, type TRPCRequestInfo } from "@trpc/server/http";
import { isObservable, observableToAsyncIterable } from "@trpc/server/observable";
import { parseTRPCMessage, type TRPCResponseMessage, type TRPCResultMessage } from "@trpc/server/rpc";
import { defaultTransformer } from "@trpc/server/unstable-core-do-not-import";
import { requestIdOf, type ConnectionGuard, type RefusalAnswer } from "./connection-guard";
import { trackedDataFrame } from "./frame-encoder";
import type { FrameReceiver } from "./guarded-web-socket";
import { STOPPED, SubscriptionWire, type WireSocket } from "./subscription-wire";

/** What a connection needs of its socket: `GuardedWebSocket`. */
export interface RpcSocket extends WireSocket {
  close(code?: number, reason?: string): void;
}

/**
 * What a connection's `createContext` gets: tRPC's `CreateWSSContextFnOptions` (`res`, the
 * socket, and `info`, with the `connectionParams` and the connection's signal), without the
 * upgrade request, which no connection keeps, and with the connection's guard.
 *
 * @see https://trpc.io/docs/server/context
 */
export interface RpcContextOptions {
  guard: ConnectionGuard;
  res: RpcSocket;
  info: TRPCRequestInfo;
}

/** What `onError` is told, as tRPC's handlers tell it (without the upgrade request). */
export interface RpcErrorOptions<TContext> {
  error: TRPCError;
  type: TRPCProcedureType | "unknown";
  path: string | undefined;
  input: unknown;
  ctx: TContext | undefined;
}

export interface RpcHandlerOptions<TContext> {
  /** Any tRPC router without a data transformer (see `RpcHandler`). */
  router: AnyTRPCRouter;
  /**
   * Makes a connection's context, once: at once, or with the client's `connectionParams`
   * when its URL says they come first (wsLink's `connectionParams` option). A throw ends
   * the connection with the error.
   */
  createContext(opts: RpcContextOptions): TContext | Promise<TContext>;
  /** Told about every error a call answers with (after the error shape is sent). */
  onError?(opts: RpcErrorOptions<TContext>): void;
  /**
   * The context one subscription's procedure gets, made from its connection's and the
   * subscription's wire (Pulse's adds the wire as `outlet`, where `trackedFeed` finds it).
   * By default the connection's context, and the subscription's items go through its iterator.
   */
  subscriptionContext?(ctx: TContext, wire: SubscriptionWire): TContext;
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

/** What an error answers: a request, the part of one that was read, or nothing (`id: null`). */
type Answered = Partial<Omit<Request, "id">> & { id?: RequestId | null };

type ParsedMessage = ReturnType<typeof parseTRPCMessage>;

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
 * What a client sees is what tRPC's handler sends for the same frames, and procedures get
 * what tRPC gives them (a per-call `signal`, `info` in `createContext`); conformance.int.test.ts
 * replays scripts of frames against both and lists the deliberate differences. Live frames
 * are written without the router's data transformer, so a router with one is refused.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export class RpcHandler<TContext> {
  readonly router: AnyTRPCRouter;

  constructor(readonly options: RpcHandlerOptions<TContext>) {
    this.router = options.router;
    if (this.router._def._config.transformer !== defaultTransformer) {
      throw new Error(
        "RpcHandler: this router has a data transformer, but Pulse's WebSocket handler writes subscription frames as plain JSON; serve it with tRPC's applyWSSHandler or drop the transformer",
      );
    }
  }

  /** Serves one socket; the guard decides on every frame before it is read. */
  connect(socket: RpcSocket, guard: ConnectionGuard, url: string | undefined): RpcConnection<TContext> {
    const awaitsParams = new URL(url ?? "/", "http://localhost").searchParams.get("connectionParams") === "1";
    return new RpcConnection(socket, guard, this, awaitsParams);
  }

  /** The message for an error answering `request` (or a frame that was not one: `null`), told to `onError`. */
  errorMessage(error: TRPCError, request: Answered | null, ctx: TContext | undefined): TRPCResponseMessage {
    const type = request?.type ?? "unknown";
    const { path, input } = request ?? {};
    this.options.onError?.({ error, type, path, input, ctx });
    const shape = getTRPCErrorShape({ config: this.router._def._config, error, type, path, input, ctx });
    return {
      id: request?.id ?? null,
      ...(request?.jsonrpc ? { jsonrpc: request.jsonrpc } : {}),
      error: shape,
    } as TRPCResponseMessage;
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
  /** `info.signal` of `createContext`, made only if it is read: most contexts never do. */
  private lifetime?: AbortController;
  /** The signals of queries and mutations in flight, aborted if the socket closes first. */
  private readonly calls = new Set<AbortController>();

  constructor(
    private readonly socket: RpcSocket,
    private readonly guard: ConnectionGuard,
    private readonly handler: RpcHandler<TContext>,
    awaitsConnectionParams: boolean,
  ) {
    this.context = awaitsConnectionParams ? null : this.createContext(() => null);
  }

  /** A frame from the client: charged before it is read, whatever it holds, so no kind of frame floods for free. */
  receive(data: unknown, isBinary: boolean): void {
    if (!this.guard.received()) return;
    const text = isBinary || !Buffer.isBuffer(data) ? null : data.toString("utf8");
    if (!this.guard.charge()) {
      this.refuseOverRate(text);
      return;
    }
    if (text === "PONG") return;
    if (text === "PING") {
      this.sendFrame("PONG");
      return;
    }
    if (!Buffer.isBuffer(data)) {
      this.sendError(
        new TRPCError({ code: "UNPROCESSABLE_CONTENT", message: "Unexpected WebSocket message format" }),
        null,
      );
      return;
    }
    let parsed: unknown;
    try {
      // As tRPC's handler reads frames: its JSON decoder, which refuses binary ones.
      parsed = jsonEncoder.decode(text ?? data);
    } catch (cause) {
      this.sendError(new TRPCError({ code: "PARSE_ERROR", cause }), null);
      return;
    }
    const requests: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
    if (!this.guard.allows(requests, this)) return;
    // Unlike tRPC's handler, a frame that is not JSON or over the limits is not taken for the
    // connectionParams: it is answered, and a flood of them is closed as any flood is.
    if (this.context === null) {
      this.context = this.createContext(() => connectionParamsOf(parsed));
      return;
    }
    let messages: ParsedMessage[];
    try {
      // One malformed request and the frame is refused whole, as tRPC's handler refuses it.
      messages = requests.map((raw) => parseTRPCMessage(raw, this.handler.router._def._config.transformer));
    } catch (cause) {
      this.sendError(new TRPCError({ code: "PARSE_ERROR", cause }), null);
      return;
    }
    // Requests are served in the order they came, once the connection knows who it is.
    if (this.settled) this.handleAll(messages);
    else void this.context.then(() => this.handleAll(messages));
  }

  /** The socket closed: every signal of this connection aborts, as under tRPC's handler (the guard stops the subscriptions). */
  closed(): void {
    this.lifetime?.abort();
    for (const call of this.calls) call.abort();
    this.calls.clear();
  }

  /**
   * A frame over the message rate is read only to learn which request ids to answer (the
   * flood close bounds how many such frames are read); the subscriptions it stops are
   * stopped all the same, since that frees what they hold.
   */
  private refuseOverRate(text: string | null): void {
    const requests = requestsOf(text);
    const asked =
      requests.length > this.guard.limits.maxBatch ? requests : requests.filter((request) => !this.stopped(request));
    this.guard.refuseOverRate(asked.map(requestIdOf), this);
  }

  /** Stops the subscription `request` names if it is a `subscription.stop`; false for any other request. */
  private stopped(request: unknown): boolean {
    if (!isRecord(request) || request.method !== "subscription.stop") return false;
    const id = requestIdOf(request);
    if (typeof id === "string" || typeof id === "number") this.guard.subscription(id)?.stop();
    return true;
  }

  private handleAll(messages: ParsedMessage[]): void {
    for (let i = 0; i < messages.length; i++) this.handle(messages[i]!, i);
  }

  private createContext(connectionParams: () => TRPCRequestInfo["connectionParams"]): Promise<TContext | TRPCError> {
    return (async () =>
      this.handler.options.createContext({
        guard: this.guard,
        res: this.socket,
        info: this.info(connectionParams()),
      }))().then(
      (ctx) => {
        this.settled = true;
        return (this.ctx = ctx);
      },
      (cause: unknown) => {
        this.settled = true;
        const error = getTRPCErrorFromUnknown(cause);
        this.sendMessage(this.handler.errorMessage(error, null, undefined));
        // As tRPC's handler does: the client learns why, then the connection ends.
        setImmediate(() => this.socket.close());
        return error;
      },
    );
  }

  /** `createContext`'s `info`, as tRPC's handler makes it; its signal aborts when the socket closes. */
  private info(connectionParams: TRPCRequestInfo["connectionParams"]): TRPCRequestInfo {
    const signal = () => (this.lifetime ??= new AbortController()).signal;
    return {
      connectionParams,
      calls: [],
      isBatchCall: false,
      accept: null,
      type: "unknown",
      url: null,
      get signal() {
        return signal();
      },
    };
  }

  private handle(message: ParsedMessage, batchIndex: number): void {
    const { id, jsonrpc } = message;
    if (id === null) {
      this.sendError(new TRPCError({ code: "PARSE_ERROR", message: "`id` is required" }), { id, jsonrpc });
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
        this.sendError(new TRPCError({ code: "BAD_REQUEST", message: `Duplicate id ${id}` }), request);
        return;
      }
      const wire = new SubscriptionWire(this.socket, id, jsonrpc);
      try {
        this.guard.subscribe(wire);
      } catch (cause) {
        this.sendError(getTRPCErrorFromUnknown(cause), request);
        return;
      }
      void this.subscribe(request, wire);
    } else {
      void this.call(request);
    }
  }

  /** A query or mutation: one answer. Its signal aborts if the socket closes first. */
  private async call(request: Request): Promise<void> {
    const call = new AbortController();
    this.calls.add(call);
    try {
      const data: unknown = await this.procedure(request, call.signal);
      if (isAsyncIterable(data) || isObservable(data)) {
        throw new TRPCError({
          code: "UNSUPPORTED_MEDIA_TYPE",
          message: `Cannot return an async iterable or observable from a ${request.type} procedure with WebSockets`,
        });
      }
      this.sendResult(request, { type: "data", data });
    } catch (cause) {
      this.sendError(getTRPCErrorFromUnknown(cause), request);
    } finally {
      this.calls.delete(call);
    }
  }

  /**
   * A subscription: `started`, then each item the procedure's iterator (or observable)
   * yields, until it ends (`stopped`), fails (the error, then `stopped`, as tRPC sends
   * them), or is stopped (by the client, the session's end, the socket's close: its signal
   * aborts, its iterator is returned, then `stopped`). A feed that goes live hands its events
   * to the wire and its iterator waits, so an idle subscriber costs its wire and its feed.
   */
  private async subscribe(request: Request, wire: SubscriptionWire): Promise<void> {
    let iterator: AsyncIterator<unknown>;
    try {
      iterator = await this.iterate(request, wire);
    } catch (cause) {
      this.sendError(getTRPCErrorFromUnknown(cause), request);
      this.guard.unsubscribe(wire);
      return;
    }
    if (!wire.ready || this.socket.readyState !== OPEN) {
      // Stopped before its procedure answered: it never starts.
      this.guard.unsubscribe(wire);
      await iterator.return?.().catch(() => undefined);
      return;
    }
    this.sendResult(request, { type: "started" });
    await this.stream(request, wire, iterator);
  }

  /** The subscription's items, from the iterable or observable its procedure returned. */
  private async iterate(request: Request, wire: SubscriptionWire): Promise<AsyncIterator<unknown>> {
    const result: unknown = await this.procedure(request, wire.signal, wire);
    if (isObservable(result)) return observableToAsyncIterable(result, wire.signal)[Symbol.asyncIterator]();
    if (isAsyncIterable(result)) return result[Symbol.asyncIterator]();
    throw new TRPCError({
      code: "INTERNAL_SERVER_ERROR",
      message: `Subscription ${request.path} did not return an observable or a AsyncGenerator`,
    });
  }

  private async stream(request: Request, wire: SubscriptionWire, iterator: AsyncIterator<unknown>): Promise<void> {
    let done = false;
    try {
      try {
        let next = iterator.next();
        for (;;) {
          const result = await wire.untilStopped(next);
          if (result === STOPPED) {
            done = true;
            await iterator.return?.();
            // Stopped because the session ended: the client is told why.
            this.guard.assertUsable();
            break;
          }
          if (result.done) {
            done = true;
            break;
          }
          // Nothing is built for a reader over its send-buffer cap (its socket is terminated then).
          if (!wire.ready || !this.writable()) break;
          this.sendItem(request, wire, result);
          next = iterator.next();
        }
      } catch (cause) {
        done = true;
        this.sendError(getTRPCErrorFromUnknown(cause), request);
      }
      this.sendResult(request, { type: "stopped" });
    } finally {
      this.guard.unsubscribe(wire);
      if (!done) await iterator.return?.().catch(() => undefined);
    }
  }

  private async procedure(request: Request, signal: AbortSignal, wire?: SubscriptionWire): Promise<unknown> {
    const context = await this.context;
    if (context instanceof TRPCError) throw context;
    const { subscriptionContext } = this.handler.options;
    const ctx = wire && subscriptionContext ? subscriptionContext(context as TContext, wire) : context;
    const { path, type, input, batchIndex } = request;
    return callTRPCProcedure({
      router: this.handler.router,
      path,
      type,
      getRawInput: async () => input,
      ctx,
      signal,
      batchIndex,
    });
  }

  /**
   * A data message; a `tracked(id, item)` carries its id twice, as tRPC's handler sends it.
   * The item is taken out of its iterator result once sent: the subscription's frame keeps
   * that result while it waits for the next one, and an idle subscriber's last item is its
   * snapshot, however large.
   */
  private sendItem(request: Request, wire: SubscriptionWire, result: { value: unknown }): void {
    const value = result.value;
    result.value = undefined;
    if (isTrackedEnvelope(value)) {
      const [trackedId, data] = value;
      this.sendFrame(trackedDataFrame(wire.prefix, String(trackedId), data));
    } else {
      this.sendResult(request, { type: "data", data: value });
    }
  }

  /** A result message for `request`, echoing its JSON-RPC version when it sent one. */
  private sendResult(request: Request, result: TRPCResultMessage<unknown>["result"]): void {
    this.sendMessage({ id: request.id, ...(request.jsonrpc ? { jsonrpc: request.jsonrpc } : {}), result });
  }

  /** Answers the requests of a frame its guard refused, with the router's error shape. */
  sendRefusals(ids: readonly (string | number)[], error: TRPCError): void {
    if (ids.length === 0) this.sendError(error, null);
    for (const id of ids) this.sendError(error, { id });
  }

  private sendError(error: TRPCError, request: Answered | null): void {
    this.sendMessage(this.handler.errorMessage(error, request, this.ctx));
  }

  private sendMessage(message: TRPCResponseMessage): void {
    if (this.writable()) this.socket.send(this.handler.encode(message));
  }

  private sendFrame(frame: string): void {
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

/** The `connectionParams` of wsLink's first message, or a PARSE_ERROR, as tRPC's handler reads them. */
function connectionParamsOf(message: unknown): TRPCRequestInfo["connectionParams"] {
  if (!isRecord(message))
    throw new TRPCError({
      code: "PARSE_ERROR",
      message: "Malformed TRPCConnectionParamsMessage",
      cause: new Error("Message was not an object"),
    });
  return parseConnectionParamsFromUnknown(message.data);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}
