/**
 * A lean gRPC server on node:http2: the seam the etcd services register on.
 *
 * Why not grpc-js: its server spends 150–180 µs of CPU per request on our
 * machines, as much as etcd's whole put path. This one does the protocol and
 * nothing else: one HTTP/2 stream per call, 5-byte length-prefixed messages
 * (identity encoding only), status and message in trailers, grpc-timeout as an
 * AbortSignal, a hard receive limit checked before buffering, and `await` as
 * backpressure on every response stream.
 *
 * Bad input never takes the process down: a connection speaking something
 * else than HTTP/2 is closed, a bad stream gets a gRPC status, and every
 * session and stream has an error listener.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { pino, type Logger } from "pino";
import { assert } from "../../lib/assert.js";
import { limits } from "../../lib/limits.js";
import type { MessageCodec } from "../protobuf/codec.js";
import { GrpcMessageParser, MalformedFrameError, MessageTooLargeError } from "./message-parser.js";
import { encodeGrpcMessage, GrpcError, GrpcStatus, type GrpcStatusCode } from "./status.js";
import { MalformedTimeoutError, parseGrpcTimeoutMs } from "./timeout.js";

/**
 * etcd lets gRPC accept this much more than --max-request-bytes so that an
 * oversized request reaches etcd's own check ("etcdserver: request is too
 * large") instead of a transport error (etcd's grpcOverheadBytes).
 */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;
/** Concurrent calls on one client connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
export const STREAMS_PER_CONNECTION_MAX = 4096;
/** Decoded client messages buffered for a slow streaming handler before the stream is paused. */
export const REQUEST_QUEUE_MESSAGES_MAX = 64;
/** How long close() lets running calls finish before cancelling them. */
export const CLOSE_GRACE_MS_DEFAULT = 5000;
/**
 * A connection with no call open for this long is closed: it covers clients
 * that connect and say nothing, or stall inside a frame (grpc-go gives a new
 * connection 120 s to finish its handshake).
 */
export const SESSION_IDLE_TIMEOUT_MS_DEFAULT = 120_000;
/** Megabytes nghttp2 may buffer per session before it refuses new streams. */
const SESSION_MEMORY_MEGABYTES_MAX = 64;

export interface GrpcServerOptions {
  /** Largest request message accepted (default: limits.requestBytesMax + GRPC_OVERHEAD_BYTES). */
  receiveMessageBytesMax?: number;
  /** TLS: when set, the server is http2.createSecureServer with these options (ALPN h2). */
  secure?: http2.SecureServerOptions;
  logger?: Logger;
  streamsPerConnectionMax?: number;
  closeGraceMs?: number;
  sessionIdleTimeoutMs?: number;
}

/** What a handler knows about its call. */
export interface CallContext {
  /** Aborts on deadline (reason: DEADLINE_EXCEEDED GrpcError), client cancel (CANCELLED) or server close (UNAVAILABLE). */
  readonly signal: AbortSignal;
  /** "address:port" of the client. */
  readonly peer: string;
  /** Absolute deadline on Date.now()'s clock, when the client sent grpc-timeout. */
  readonly deadlineMs: number | undefined;
  /** Request headers (custom metadata included; keys are lower case). */
  readonly metadata: http2.IncomingHttpHeaders;
  /** Encoded size of the (first) request message, for size limits that must see the wire bytes. */
  readonly requestBytes: number;
}

/** The response side of a streaming call. */
export interface ResponseSink<T> {
  /** Resolves when the message is handed to HTTP/2 and there is room for the next; rejects once the call is over. */
  send(message: T): Promise<void>;
}

export type UnaryHandler<Request, Response> = (request: Request, context: CallContext) => Promise<Response>;
export type ServerStreamHandler<Request, Response> = (request: Request, responses: ResponseSink<Response>, context: CallContext) => Promise<void>;
export type BidiStreamHandler<Request, Response> = (requests: AsyncIterable<Request>, responses: ResponseSink<Response>, context: CallContext) => Promise<void>;

export interface MethodCodecs<Request, Response> {
  request: MessageCodec<Request>;
  response: MessageCodec<Response>;
}

export interface GrpcServer {
  /** `path` is "/package.Service/Method". Registering a path twice is a programming error. */
  registerUnary<Request, Response>(path: string, codecs: MethodCodecs<Request, Response>, handler: UnaryHandler<Request, Response>): void;
  registerServerStream<Request, Response>(path: string, codecs: MethodCodecs<Request, Response>, handler: ServerStreamHandler<Request, Response>): void;
  registerBidiStream<Request, Response>(path: string, codecs: MethodCodecs<Request, Response>, handler: BidiStreamHandler<Request, Response>): void;
  /** Starts listening; port 0 picks a free port. Resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting, lets running calls finish for the grace period, then cancels them. Idempotent. */
  close(graceMs?: number): Promise<void>;
  /** Resolves once close() has finished. */
  closed(): Promise<void>;
}

type MethodKind = "unary" | "serverStream" | "bidiStream";

interface RegisteredMethod {
  kind: MethodKind;
  codecs: MethodCodecs<unknown, unknown>;
  handler: (...args: never[]) => Promise<unknown>;
}

export function createGrpcServer(options: GrpcServerOptions = {}): GrpcServer {
  return new Http2GrpcServer(options);
}

class Http2GrpcServer implements GrpcServer {
  private readonly methods = new Map<string, RegisteredMethod>();
  private readonly services = new Set<string>();
  private readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly openStreams = new WeakMap<http2.Http2Session, number>();
  readonly calls = new Set<ServerCall>();
  readonly logger: Logger;
  readonly receiveMessageBytesMax: number;
  private closing: Promise<void> | undefined;
  private resolveClosed!: () => void;
  private readonly closedPromise = new Promise<void>((resolve) => (this.resolveClosed = resolve));

  constructor(private readonly options: GrpcServerOptions) {
    this.logger = options.logger ?? pino({ level: "silent" });
    this.receiveMessageBytesMax = options.receiveMessageBytesMax ?? limits.requestBytesMax + GRPC_OVERHEAD_BYTES;
    const settings: http2.Settings = { maxConcurrentStreams: options.streamsPerConnectionMax ?? STREAMS_PER_CONNECTION_MAX };
    const serverOptions = { settings, maxSessionMemory: SESSION_MEMORY_MEGABYTES_MAX };
    this.server = options.secure
      ? http2.createSecureServer({ ...serverOptions, ...options.secure, allowHTTP1: false })
      : http2.createServer(serverOptions);
    this.server.on("stream", (stream, headers) => this.onStream(stream, headers));
    this.server.on("session", (session) => this.onSession(session));
    this.server.on("sessionError", (error) => this.logger.debug({ err: error }, "grpc session error"));
    // A TLS client that did not negotiate h2 (e.g. HTTP/1.1 over TLS): close it.
    this.server.on("unknownProtocol", (socket) => socket.destroy());
    this.server.on("error", (error) => this.logger.error({ err: error }, "grpc server error"));
  }

  registerUnary<Request, Response>(path: string, codecs: MethodCodecs<Request, Response>, handler: UnaryHandler<Request, Response>): void {
    this.register(path, "unary", codecs as MethodCodecs<unknown, unknown>, handler as RegisteredMethod["handler"]);
  }

  registerServerStream<Request, Response>(path: string, codecs: MethodCodecs<Request, Response>, handler: ServerStreamHandler<Request, Response>): void {
    this.register(path, "serverStream", codecs as MethodCodecs<unknown, unknown>, handler as RegisteredMethod["handler"]);
  }

  registerBidiStream<Request, Response>(path: string, codecs: MethodCodecs<Request, Response>, handler: BidiStreamHandler<Request, Response>): void {
    this.register(path, "bidiStream", codecs as MethodCodecs<unknown, unknown>, handler as RegisteredMethod["handler"]);
  }

  private register(path: string, kind: MethodKind, codecs: MethodCodecs<unknown, unknown>, handler: RegisteredMethod["handler"]): void {
    const parsed = parsePath(path);
    assert(parsed !== undefined, () => `gRPC method path must look like /package.Service/Method, got ${path}`);
    assert(!this.methods.has(path), () => `gRPC method registered twice: ${path}`);
    this.methods.set(path, { kind, codecs, handler });
    this.services.add(parsed.service);
  }

  listen(port: number, host = "127.0.0.1"): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(graceMs = this.options.closeGraceMs ?? CLOSE_GRACE_MS_DEFAULT): Promise<void> {
    this.closing ??= this.shutDown(graceMs);
    return this.closing;
  }

  closed(): Promise<void> {
    return this.closedPromise;
  }

  private async shutDown(graceMs: number): Promise<void> {
    const listenerClosed = new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    // GOAWAY: clients stop opening streams here; running calls continue.
    for (const session of this.sessions) session.close();
    const drained = new Promise<void>((resolve) => {
      const check = (): void => (this.sessions.size === 0 ? resolve() : void setTimeout(check, 10).unref());
      check();
    });
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace over">((resolve) => (timer = setTimeout(() => resolve("grace over"), graceMs)));
    const outcome = await Promise.race([drained, graceOver]);
    clearTimeout(timer);
    if (outcome === "grace over") {
      for (const call of [...this.calls]) call.cancel(new GrpcError(GrpcStatus.unavailable, "grpc: the server is shutting down"));
      for (const session of this.sessions) session.destroy();
    }
    await listenerClosed;
    this.resolveClosed();
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    session.on("close", () => this.sessions.delete(session));
    // Garbage instead of the HTTP/2 preface, a broken frame, a reset socket: log and let the session close.
    session.on("error", (error) => this.logger.debug({ err: error }, "grpc session error"));
    session.setTimeout(this.options.sessionIdleTimeoutMs ?? SESSION_IDLE_TIMEOUT_MS_DEFAULT, () => {
      if ((this.openStreams.get(session) ?? 0) === 0) session.destroy();
    });
    if (this.closing) session.close();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", (error) => this.logger.debug({ err: error }, "grpc stream error"));
    const session = stream.session;
    if (session) this.openStreams.set(session, (this.openStreams.get(session) ?? 0) + 1);
    const method = this.route(stream, headers);
    if (method) new ServerCall(this, stream, headers, method.registered, method.timeoutMs).start();
    else stream.once("close", () => this.streamClosed(stream));
  }

  /** Bookkeeping for the idle timeout: every stream the server saw ends here once. */
  streamClosed(stream: http2.ServerHttp2Stream): void {
    const session = stream.session;
    if (session) this.openStreams.set(session, (this.openStreams.get(session) ?? 1) - 1);
  }

  /** The method a stream calls, or undefined after answering the stream with an error. */
  private route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): { registered: RegisteredMethod; timeoutMs: number | undefined } | undefined {
    if (headers[":method"] !== "POST") {
      respondHttpError(stream, 405, "gRPC requires POST");
      return undefined;
    }
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !(contentType === "application/grpc" || contentType.startsWith("application/grpc+") || contentType.startsWith("application/grpc;"))) {
      respondHttpError(stream, 415, `unsupported content-type ${JSON.stringify(contentType ?? "")}: this is a gRPC endpoint`);
      return undefined;
    }
    const path = headers[":path"] ?? "";
    const method = this.methods.get(path);
    if (!method) {
      respondTrailersOnly(stream, GrpcStatus.unimplemented, this.unknownMethodMessage(path));
      return undefined;
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      respondTrailersOnly(stream, GrpcStatus.unimplemented, `grpc: Decompressor is not installed for grpc-encoding ${JSON.stringify(encoding)}`);
      return undefined;
    }
    let timeoutMs: number | undefined;
    try {
      timeoutMs = parseGrpcTimeoutMs(headers["grpc-timeout"]);
    } catch (error) {
      assert(error instanceof MalformedTimeoutError, "parseGrpcTimeoutMs only throws MalformedTimeoutError");
      respondTrailersOnly(stream, GrpcStatus.internal, `transport: ${error.message}`);
      return undefined;
    }
    if (this.closing) {
      respondTrailersOnly(stream, GrpcStatus.unavailable, "grpc: the server is shutting down");
      return undefined;
    }
    return { registered: method, timeoutMs };
  }

  private unknownMethodMessage(path: string): string {
    const parsed = parsePath(path);
    if (!parsed) return `malformed method name: ${JSON.stringify(path)}`;
    if (!this.services.has(parsed.service)) return `unknown service ${parsed.service}`;
    return `unknown method ${parsed.method} for service ${parsed.service}`;
  }
}

function parsePath(path: string): { service: string; method: string } | undefined {
  const match = /^\/([^/]+)\/([^/]+)$/.exec(path);
  return match ? { service: match[1], method: match[2] } : undefined;
}

function respondHttpError(stream: http2.ServerHttp2Stream, status: number, text: string): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond({ ":status": status, "content-type": "text/plain; charset=utf-8" });
    stream.end(text);
  } catch {
    stream.destroy();
  }
}

/** A gRPC "Trailers-Only" response: one HEADERS frame carrying the status, ending the stream. */
function respondTrailersOnly(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) },
      { endStream: true },
    );
  } catch {
    stream.destroy();
  }
}

/** Frames an encoded message: flag 0 (not compressed), 4-byte big-endian length, body. */
export function frameMessage<T>(codec: MessageCodec<T>, message: T): Uint8Array {
  if (codec.encodeWithPrefix) {
    const framed = codec.encodeWithPrefix(message, 5);
    writeFrameHeader(framed, framed.length - 5);
    return framed;
  }
  const body = codec.encode(message);
  const framed = Buffer.allocUnsafe(body.length + 5);
  framed.set(body, 5);
  writeFrameHeader(framed, body.length);
  return framed;
}

function writeFrameHeader(framed: Uint8Array, length: number): void {
  framed[0] = 0;
  framed[1] = length >>> 24;
  framed[2] = (length >>> 16) & 0xff;
  framed[3] = (length >>> 8) & 0xff;
  framed[4] = length & 0xff;
}

/** The status a handler's failure becomes on the wire. */
export function statusOf(error: unknown): { code: GrpcStatusCode; message: string } {
  if (error instanceof GrpcError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: GrpcStatus.unknown, message };
}

// Shared, never mutated: node copies header objects into its own frame buffers.
const RESPONSE_HEADERS: http2.OutgoingHttpHeaders = Object.freeze({ ":status": 200, "content-type": "application/grpc", "grpc-accept-encoding": "identity" });
const OK_TRAILERS: http2.OutgoingHttpHeaders = Object.freeze({ "grpc-status": "0" });
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });

/**
 * One call = one HTTP/2 stream. It owns the request parser, the lazily made
 * AbortController, the deadline timer, and the single place where the call
 * ends (`finish`), which runs at most once.
 */
class ServerCall implements CallContext {
  private readonly parser: GrpcMessageParser;
  private controller: AbortController | undefined;
  private cancelReason: GrpcError | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private messagesReceived = 0;
  private trailers: http2.OutgoingHttpHeaders | undefined;
  private readonly drainWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private requestQueue: RequestQueue<unknown> | undefined;
  private drainListening = false;
  readonly deadlineMs: number | undefined;
  requestBytes = 0;

  constructor(
    private readonly server: Http2GrpcServer,
    private readonly stream: http2.ServerHttp2Stream,
    readonly metadata: http2.IncomingHttpHeaders,
    private readonly method: RegisteredMethod,
    timeoutMs: number | undefined,
  ) {
    this.parser = new GrpcMessageParser(server.receiveMessageBytesMax);
    this.deadlineMs = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    if (timeoutMs !== undefined) {
      this.deadlineTimer = setTimeout(() => this.onDeadline(), Math.min(timeoutMs, 2 ** 31 - 1));
    }
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelReason) this.controller.abort(this.cancelReason);
    }
    return this.controller.signal;
  }

  get peer(): string {
    const socket = this.stream.session?.socket;
    return socket ? `${socket.remoteAddress}:${socket.remotePort}` : "unknown";
  }

  start(): void {
    this.server.calls.add(this);
    const stream = this.stream;
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("end", () => this.onEnd());
    stream.on("close", () => this.onClose());
    if (this.method.kind === "bidiStream") {
      const queue = new RequestQueue<unknown>(() => stream.pause(), () => stream.resume());
      this.requestQueue = queue;
      const handler = this.method.handler as unknown as BidiStreamHandler<unknown, unknown>;
      this.run(() => handler(queue, this.sink(), this));
    }
  }

  private onData(chunk: Buffer): void {
    if (this.finished) return;
    try {
      this.parser.push(chunk, (compressed, body) => this.onMessage(compressed, body));
    } catch (error) {
      if (error instanceof MessageTooLargeError) this.fail(GrpcStatus.resourceExhausted, error.message);
      else if (error instanceof MalformedFrameError) this.fail(GrpcStatus.internal, error.message);
      else throw error;
    }
  }

  private onMessage(compressed: boolean, body: Uint8Array): void {
    if (this.finished) return;
    if (compressed) {
      this.fail(GrpcStatus.internal, "grpc: compressed flag set with identity or empty encoding");
      return;
    }
    this.messagesReceived++;
    if (this.method.kind !== "bidiStream" && this.messagesReceived > 1) {
      this.fail(GrpcStatus.internal, "grpc: a unary request carried more than one message");
      return;
    }
    let request: unknown;
    try {
      request = this.method.codecs.request.decode(body);
    } catch (error) {
      this.fail(GrpcStatus.internal, `grpc: error unmarshalling request: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (this.method.kind === "bidiStream") {
      this.requestQueue?.push(request);
      return;
    }
    this.requestBytes = body.length;
    if (this.method.kind === "unary") {
      const handler = this.method.handler as unknown as UnaryHandler<unknown, unknown>;
      this.runUnary(() => handler(request, this));
    } else {
      const handler = this.method.handler as unknown as ServerStreamHandler<unknown, unknown>;
      this.run(() => handler(request, this.sink(), this));
    }
  }

  private onEnd(): void {
    if (this.finished) return;
    if (this.parser.midMessage) {
      this.fail(GrpcStatus.internal, `grpc: request stream ended inside a message (${this.parser.describePending()})`);
      return;
    }
    if (this.method.kind === "bidiStream") this.requestQueue?.end();
    else if (this.messagesReceived === 0) this.fail(GrpcStatus.internal, "grpc: request stream ended without a request message");
  }

  /** The stream is gone (finished, reset by the client, or the connection died). */
  private onClose(): void {
    this.server.calls.delete(this);
    this.server.streamClosed(this.stream);
    clearTimeout(this.deadlineTimer);
    if (!this.finished) {
      this.finished = true;
      this.abort(new GrpcError(GrpcStatus.cancelled, "context canceled"));
    }
    if (this.drainWaiters.length > 0) this.rejectDrainWaiters(this.cancelReason ?? new GrpcError(GrpcStatus.cancelled, "context canceled"));
  }

  private onDeadline(): void {
    if (this.finished) return;
    this.fail(GrpcStatus.deadlineExceeded, "context deadline exceeded");
  }

  /** Ends the call early (server shutdown). */
  cancel(reason: GrpcError): void {
    this.fail(reason.code, reason.message);
  }

  private abort(reason: GrpcError): void {
    this.cancelReason ??= reason;
    this.controller?.abort(this.cancelReason);
    this.requestQueue?.fail(this.cancelReason);
  }

  /** Ends the call with a non-OK status and tells the handler to stop. */
  private fail(code: GrpcStatusCode, message: string): void {
    if (this.finished) return;
    this.abort(new GrpcError(code, message));
    this.finish(code, message);
  }

  private run(body: () => Promise<void>): void {
    let promise: Promise<void>;
    try {
      promise = body();
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      () => this.finish(GrpcStatus.ok, ""),
      (error: unknown) => this.finishWithError(error),
    );
  }

  private runUnary(body: () => Promise<unknown>): void {
    let promise: Promise<unknown>;
    try {
      promise = body();
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (response) => {
        if (this.finished) return;
        let framed: Uint8Array;
        try {
          framed = frameMessage(this.method.codecs.response, response);
        } catch (error) {
          this.server.logger.error({ err: error }, "grpc response failed to encode");
          this.finish(GrpcStatus.internal, `grpc: error while marshaling: ${error instanceof Error ? error.message : String(error)}`);
          return;
        }
        this.finish(GrpcStatus.ok, "", framed);
      },
      (error: unknown) => this.finishWithError(error),
    );
  }

  private finishWithError(error: unknown): void {
    if (this.finished) return;
    if (!(error instanceof GrpcError)) this.server.logger.warn({ err: error }, "grpc handler failed with an untyped error");
    const status = statusOf(error);
    this.abort(new GrpcError(status.code, status.message));
    this.finish(status.code, status.message);
  }

  private sendHeaders(): boolean {
    const stream = this.stream;
    if (stream.headersSent) return true;
    if (stream.destroyed) return false;
    stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
    stream.once("wantTrailers", () => {
      try {
        stream.sendTrailers(this.trailers ?? OK_TRAILERS);
      } catch (error) {
        this.server.logger.debug({ err: error }, "grpc trailers not sent");
      }
    });
    return true;
  }

  /** The one place a call ends: trailers (or trailers-only) with the status, at most once. */
  private finish(code: GrpcStatusCode, message: string, lastMessage?: Uint8Array): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.deadlineTimer);
    this.server.calls.delete(this);
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    try {
      if (!stream.headersSent && code !== GrpcStatus.ok) {
        respondTrailersOnly(stream, code, message);
        return;
      }
      this.sendHeaders();
      this.trailers = code === GrpcStatus.ok ? OK_TRAILERS : { "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) };
      if (lastMessage) stream.end(lastMessage);
      else stream.end();
    } catch (error) {
      this.server.logger.debug({ err: error }, "grpc stream could not be finished cleanly");
      stream.destroy();
    }
    // A client that keeps sending after the status has nothing more to say to us.
    if (!stream.readableEnded) stream.resume();
  }

  private sink(): ResponseSink<unknown> {
    return { send: (message) => this.send(message) };
  }

  private send(message: unknown): Promise<void> {
    if (this.finished) return Promise.reject(this.cancelReason ?? new GrpcError(GrpcStatus.cancelled, "grpc: the call has already finished"));
    const framed = frameMessage(this.method.codecs.response, message);
    if (!this.sendHeaders()) return Promise.reject(new GrpcError(GrpcStatus.cancelled, "context canceled"));
    if (this.stream.write(framed)) return Promise.resolve();
    if (!this.drainListening) {
      this.drainListening = true;
      this.stream.on("drain", () => this.onDrain());
    }
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  private onDrain(): void {
    for (const waiter of this.drainWaiters.splice(0)) waiter.resolve();
  }

  private rejectDrainWaiters(reason: unknown): void {
    for (const waiter of this.drainWaiters.splice(0)) waiter.reject(reason);
  }
}

/**
 * The request side of a bidirectional stream as an async iterable, bounded:
 * above REQUEST_QUEUE_MESSAGES_MAX unread messages the HTTP/2 stream is
 * paused, so a client cannot make the server buffer without bound.
 */
class RequestQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private ended = false;
  private failure: unknown;
  private waiter: { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void } | undefined;
  private paused = false;

  constructor(
    private readonly pause: () => void,
    private readonly resume: () => void,
  ) {}

  push(item: T): void {
    if (this.ended || this.failure !== undefined) return;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter.resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
    if (!this.paused && this.items.length >= REQUEST_QUEUE_MESSAGES_MAX) {
      this.paused = true;
      this.pause();
    }
  }

  end(): void {
    this.ended = true;
    this.settleWaiter();
  }

  fail(reason: unknown): void {
    if (this.failure !== undefined || this.ended) return;
    this.failure = reason;
    this.settleWaiter();
  }

  private settleWaiter(): void {
    if (!this.waiter || this.items.length > 0) return;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (this.failure !== undefined) waiter.reject(this.failure);
    else waiter.resolve({ value: undefined, done: true });
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const value = this.items.shift() as T;
      if (this.paused && this.items.length < REQUEST_QUEUE_MESSAGES_MAX / 2) {
        this.paused = false;
        this.resume();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    assert(this.waiter === undefined, "a request stream has one reader at a time");
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next(), return: async () => ({ value: undefined, done: true }) };
  }
}
