/**
 * One gRPC channel per endpoint, on node:http2 with the API layer's codecs
 * (no grpc-js: its client costs 300–500 µs of CPU per call here).
 *
 * A channel owns at most one HTTP/2 session, opened on first use and again
 * after it was lost. Each call is one stream: a 5-byte framed request, a
 * grpc-timeout header from the call's absolute deadline, the response
 * messages parsed with a hard size cap, and the status from the trailers.
 *
 * What a failed call reports matters more than anything else here, because
 * the client decides from it whether a write may be sent again:
 * - the session never connected, or the server refused the stream unprocessed
 *   (REFUSED_STREAM, which is also how a GOAWAY ends streams it did not
 *   take): TransportError with requestSent = false;
 * - the connection failed after the stream was opened: requestSent = true,
 *   because its bytes may have reached the server;
 * - the deadline or the caller's signal stopped the call: CallAbortedError,
 *   with requestSent as above;
 * - the server answered with a status: EtcdClientError.
 */
import http2 from "node:http2";
import {
  decodeGrpcMessage, formatGrpcTimeout, frameMessage, GrpcMessageParser, GrpcStatus, MessageTooLargeError,
  type GrpcStatusCode, type MessageCodec,
} from "../api/mod.js";
import { assert } from "../lib/assert.js";
import type { Endpoint } from "./endpoint.js";
import { CallAbortedError, EtcdClientError, TransportError } from "./errors.js";

/** TLS settings for https:// endpoints (passed to node:tls). */
export interface TlsOptions {
  /** Trusted CA certificates (PEM); the system's when absent. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Client certificate and key (PEM), for servers that require client certificates. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** The name to check the server's certificate against, when it is not the endpoint's host. */
  readonly servername?: string;
  /** false accepts any server certificate (etcdctl's --insecure-skip-tls-verify). Default true. */
  readonly rejectUnauthorized?: boolean;
}

export interface ChannelOptions {
  /** How long establishing a connection may take before the endpoint counts as unreachable. */
  readonly dialTimeoutMs: number;
  /** Largest response message accepted; a larger one fails the call with RESOURCE_EXHAUSTED. */
  readonly receiveMessageBytesMax: number;
  readonly tls?: TlsOptions;
}

/** One RPC: its HTTP/2 path and codecs. */
export interface MethodDescriptor<Request, Response> {
  /** "/etcdserverpb.KV/Put" */
  readonly path: string;
  /** "KV/Put", for messages. */
  readonly name: string;
  readonly request: MessageCodec<Request>;
  readonly response: MessageCodec<Response>;
}

export function methodDescriptor<Request, Response>(
  service: string, method: string, request: MessageCodec<Request>, response: MessageCodec<Response>,
): MethodDescriptor<Request, Response> {
  return { path: `/etcdserverpb.${service}/${method}`, name: `${service}/${method}`, request, response };
}

/** Response messages of a server stream buffered before the stream is paused (the reader's pace is the backpressure). */
export const STREAM_QUEUE_MESSAGES_MAX = 16;

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** gRPC's mapping of HTTP statuses for responses that carry no grpc-status (gRPC over HTTP/2 spec). */
function grpcCodeOfHttpStatus(status: number): GrpcStatusCode {
  switch (status) {
    case 400: return GrpcStatus.internal;
    case 401: return GrpcStatus.unauthenticated;
    case 403: return GrpcStatus.permissionDenied;
    case 404: return GrpcStatus.unimplemented;
    case 429: case 502: case 503: case 504: return GrpcStatus.unavailable;
    default: return GrpcStatus.unknown;
  }
}

function grpcCodeOf(text: string): GrpcStatusCode {
  const code = Number(text);
  return Number.isInteger(code) && code >= 0 && code <= 16 ? (code as GrpcStatusCode) : GrpcStatus.unknown;
}

interface SessionEntry {
  readonly session: http2.ClientHttp2Session;
  /** Resolves once the connection is established; rejects with a TransportError (requestSent false) otherwise. */
  readonly ready: Promise<void>;
  /** Calls running on the session; the socket keeps the process alive only while there are some. */
  active: number;
}

/** Receives a call's response messages as they are parsed. */
interface MessageSink {
  message(body: Uint8Array): void;
  /** Gives the sink the means to pause the stream (for backpressure) and to cancel it. */
  attach?(controls: StreamControls): void;
  /** For bidirectional calls: the request side stays open and the sink gets a way to send more requests. */
  requests?(send: (framed: Uint8Array) => void): void;
}

/** A bidirectional call: more requests go out with send(); responses are read from `responses`. */
export interface BidiCall<Request, Response> {
  readonly responses: ResponseStream<Response>;
  /** Sends one more request; false once the call is over. */
  send(request: Request): boolean;
}

interface StreamControls {
  pause(): void;
  resume(): void;
  cancel(): void;
}

export class Channel {
  private entry: SessionEntry | undefined;
  private closed = false;

  constructor(
    readonly endpoint: Endpoint,
    private readonly options: ChannelOptions,
  ) {}

  /** Calls a unary RPC; `deadlineAtMs` is on Date.now()'s clock. */
  async unary<Request, Response>(method: MethodDescriptor<Request, Response>, request: Request, signal: AbortSignal, deadlineAtMs: number | undefined): Promise<Response> {
    const responses: Response[] = [];
    const sink: MessageSink = {
      message: (body) => {
        if (responses.length > 0) throw this.statusError(method, GrpcStatus.internal, "grpc: a unary response carried more than one message");
        responses.push(this.decode(method, body));
      },
    };
    await this.call(method, request, signal, deadlineAtMs, sink);
    if (responses.length === 0) throw this.statusError(method, GrpcStatus.internal, "grpc: the server answered OK without a response message");
    return responses[0];
  }

  /**
   * Calls a server-streaming RPC. The call starts at once; the iterable
   * yields the responses, ends on an OK status, throws the call's failure,
   * and cancels the call when the reader stops early.
   */
  serverStream<Request, Response>(method: MethodDescriptor<Request, Response>, request: Request, signal: AbortSignal, deadlineAtMs: number | undefined): ResponseStream<Response> {
    const stream = new ResponseStream<Response>();
    const sink: MessageSink = {
      message: (body) => stream.push(this.decode(method, body)),
      attach: (controls) => stream.attach(controls),
    };
    this.call(method, request, signal, deadlineAtMs, sink).then(() => stream.end(), (error: unknown) => stream.fail(error));
    return stream;
  }

  /**
   * Opens a bidirectional stream with a first request. Later requests go
   * out with send(); the responses arrive as for serverStream(), paced by
   * the reader. The call ends when the signal aborts or the server ends it.
   */
  bidiStream<Request, Response>(method: MethodDescriptor<Request, Response>, firstRequest: Request, signal: AbortSignal): BidiCall<Request, Response> {
    const responses = new ResponseStream<Response>();
    let write: ((framed: Uint8Array) => void) | undefined;
    // Requests sent before the stream is open wait here (a handful at most: the caller's own creates and cancels).
    const early: Uint8Array[] = [];
    let over = false;
    const sink: MessageSink = {
      message: (body) => responses.push(this.decode(method, body)),
      attach: (controls) => responses.attach(controls),
      requests: (send) => {
        write = send;
        for (const framed of early.splice(0)) send(framed);
      },
    };
    this.call(method, firstRequest, signal, undefined, sink).then(() => responses.end(), (error: unknown) => responses.fail(error)).finally(() => (over = true));
    return {
      responses,
      send: (request) => {
        if (over) return false;
        const framed = frameMessage(method.request, request);
        if (write === undefined) early.push(framed);
        else write(framed);
        return true;
      },
    };
  }

  /** Closes the connection; calls on it fail. Idempotent; a closed channel opens no new connection. */
  close(): void {
    this.closed = true;
    const entry = this.entry;
    this.entry = undefined;
    entry?.session.destroy();
  }

  private decode<Response>(method: MethodDescriptor<unknown, Response>, body: Uint8Array): Response {
    try {
      return method.response.decode(body);
    } catch (error) {
      throw this.statusError(method, GrpcStatus.internal, `grpc: failed to decode the response: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }

  private statusError(method: MethodDescriptor<unknown, unknown>, code: GrpcStatusCode, details: string, cause?: unknown): EtcdClientError {
    return new EtcdClientError(code, details, this.endpoint.address, method.name, cause === undefined ? undefined : { cause });
  }

  /** The connected session, opening one when there is none. */
  private async connect(signal: AbortSignal, deadlineAtMs: number | undefined): Promise<SessionEntry> {
    if (this.closed) throw new TransportError(this.endpoint.address, false, "the channel is closed");
    let entry = this.entry;
    if (entry === undefined || entry.session.closed || entry.session.destroyed) entry = this.entry = this.open();
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      onAbort = () => reject(new CallAbortedError(this.endpoint.address, false, signal.reason, false));
      signal.addEventListener("abort", onAbort, { once: true });
      if (deadlineAtMs !== undefined) {
        timer = setTimeout(() => reject(new CallAbortedError(this.endpoint.address, false, undefined, true)), Math.max(0, deadlineAtMs - Date.now()));
      }
    });
    try {
      await Promise.race([entry.ready, stopped]);
      return entry;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  private open(): SessionEntry {
    const address = this.endpoint.address;
    const tls = this.endpoint.secure ? { ...this.options.tls, ALPNProtocols: ["h2"] } : {};
    const session = http2.connect(this.endpoint.url, { ...tls, settings: { enablePush: false } } as http2.SecureClientSessionOptions);
    let lastError: Error | undefined;
    // Without this listener a refused connection would be an uncaught 'error' event.
    session.on("error", (error: Error) => (lastError = error));
    const ready = new Promise<void>((resolve, reject) => {
      const dialTimer = setTimeout(() => {
        lastError = new Error(`no connection within ${this.options.dialTimeoutMs} ms`);
        session.destroy();
      }, this.options.dialTimeoutMs);
      session.once("connect", () => {
        clearTimeout(dialTimer);
        if (entry.active === 0) session.unref();
        resolve();
      });
      session.once("close", () => {
        clearTimeout(dialTimer);
        reject(new TransportError(address, false, `cannot connect: ${lastError?.message ?? "connection closed"}`, { cause: lastError }));
      });
    });
    // Callers that stopped waiting must not leave the rejection unhandled.
    ready.catch(() => undefined);
    const entry: SessionEntry = { session, ready, active: 0 };
    const forget = (): void => {
      if (this.entry === entry) this.entry = undefined;
    };
    // After a GOAWAY the session takes no new streams; the next call opens a new one.
    session.on("goaway", forget);
    session.on("close", forget);
    return entry;
  }

  private async call<Request>(method: MethodDescriptor<Request, unknown>, request: Request, signal: AbortSignal, deadlineAtMs: number | undefined, sink: MessageSink): Promise<void> {
    const address = this.endpoint.address;
    if (signal.aborted) throw new CallAbortedError(address, false, signal.reason, false);
    if (deadlineAtMs !== undefined && deadlineAtMs <= Date.now()) throw new CallAbortedError(address, false, undefined, true);
    // Encoding first: a request that cannot be encoded fails before any connection is made.
    const framed = frameMessage(method.request, request);
    const entry = await this.connect(signal, deadlineAtMs);
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST", ":path": method.path, "content-type": "application/grpc", te: "trailers", "grpc-accept-encoding": "identity",
    };
    if (deadlineAtMs !== undefined) headers["grpc-timeout"] = formatGrpcTimeout(deadlineAtMs - Date.now());
    let stream: http2.ClientHttp2Stream;
    try {
      stream = entry.session.request(headers, { endStream: false });
    } catch (error) {
      // The session is closing (GOAWAY) or gone: the request was not sent.
      throw new TransportError(address, false, `cannot open a stream: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    entry.active++;
    entry.session.ref();
    return new Promise<void>((resolve, reject) => {
      let httpStatus: number | undefined;
      let grpcStatus: string | undefined;
      let grpcMessage = "";
      let streamError: Error | undefined;
      let failure: unknown;
      let aborted: CallAbortedError | undefined;
      const parser = new GrpcMessageParser(this.options.receiveMessageBytesMax);
      const cancel = (): void => {
        if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
      };
      const onAbort = (): void => {
        aborted ??= new CallAbortedError(address, true, signal.reason, false);
        cancel();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const deadlineTimer = deadlineAtMs === undefined ? undefined : setTimeout(() => {
        aborted ??= new CallAbortedError(address, true, undefined, true);
        cancel();
      }, Math.max(0, deadlineAtMs - Date.now()));
      const readStatus = (fields: http2.IncomingHttpHeaders): void => {
        const status = fields["grpc-status"];
        if (typeof status === "string") {
          grpcStatus = status;
          const message = fields["grpc-message"];
          grpcMessage = typeof message === "string" ? decodeGrpcMessage(message) : "";
        }
      };
      stream.on("response", (fields) => {
        httpStatus = Number(fields[":status"]);
        readStatus(fields);
      });
      stream.on("trailers", readStatus);
      stream.on("data", (chunk: Buffer) => {
        if (failure !== undefined) return;
        try {
          parser.push(chunk, (compressed, body) => {
            if (compressed) throw this.statusError(method, GrpcStatus.internal, "grpc: compressed response without a negotiated encoding");
            sink.message(body);
          });
        } catch (error) {
          failure = error instanceof MessageTooLargeError ? this.statusError(method, GrpcStatus.resourceExhausted, error.message) : error;
          cancel();
        }
      });
      stream.on("error", (error: Error) => (streamError ??= error));
      // The server's status ends the call. A bidirectional call's request side is still open then, and the
      // stream only closes once both sides have: end ours, or the call would wait for the connection to drop.
      stream.on("end", () => {
        if (sink.requests !== undefined && !stream.writableEnded && !stream.destroyed) stream.end();
      });
      sink.attach?.({ pause: () => stream.pause(), resume: () => stream.resume(), cancel });
      stream.on("close", () => {
        clearTimeout(deadlineTimer);
        signal.removeEventListener("abort", onAbort);
        entry.active--;
        if (entry.active === 0 && !entry.session.destroyed) entry.session.unref();
        if (grpcStatus !== undefined && failure === undefined) {
          const code = grpcCodeOf(grpcStatus);
          if (code === GrpcStatus.ok) {
            if (parser.midMessage) reject(this.statusError(method, GrpcStatus.internal, "grpc: the response ended inside a message"));
            else resolve();
          } else reject(this.statusError(method, code, grpcMessage));
          return;
        }
        if (failure !== undefined) reject(failure);
        else if (aborted !== undefined) reject(aborted);
        else if (httpStatus !== undefined && httpStatus !== 200) {
          reject(this.statusError(method, grpcCodeOfHttpStatus(httpStatus), `HTTP status ${httpStatus} without a gRPC status`));
        } else {
          const refused = stream.rstCode === NGHTTP2_REFUSED_STREAM;
          const reason = streamError?.message ?? `the stream closed without a status (HTTP/2 code ${stream.rstCode})`;
          reject(new TransportError(address, !refused, refused ? `the server refused the stream unprocessed: ${reason}` : `connection lost: ${reason}`, { cause: streamError }));
        }
      });
      if (sink.requests === undefined) {
        stream.end(framed);
        return;
      }
      stream.write(framed);
      sink.requests((more) => {
        if (!stream.closed && !stream.destroyed) stream.write(more);
      });
    });
  }
}

/**
 * The responses of a server-streaming call, read with `for await`. At most
 * STREAM_QUEUE_MESSAGES_MAX responses wait for the reader; beyond that the
 * HTTP/2 stream is paused, so the server's sends wait for the reader.
 */
export class ResponseStream<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private ended = false;
  private failure: unknown;
  private controls: StreamControls | undefined;
  private paused = false;
  private waiter: { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void } | undefined;

  /** @internal */
  attach(controls: StreamControls): void {
    this.controls = controls;
  }

  /** @internal */
  push(item: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter.resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
    if (!this.paused && this.items.length >= STREAM_QUEUE_MESSAGES_MAX) {
      this.paused = true;
      this.controls?.pause();
    }
  }

  /** @internal */
  end(): void {
    this.finish(undefined);
  }

  /** @internal */
  fail(error: unknown): void {
    this.finish(error);
  }

  private finish(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    if (this.waiter && this.items.length === 0) {
      const waiter = this.waiter;
      this.waiter = undefined;
      if (error === undefined) waiter.resolve({ value: undefined, done: true });
      else waiter.reject(error);
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const value = this.items.shift() as T;
      if (this.paused && this.items.length < STREAM_QUEUE_MESSAGES_MAX / 2) {
        this.paused = false;
        this.controls?.resume();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      const failure = this.failure;
      this.failure = undefined;
      return failure === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(failure);
    }
    assert(this.waiter === undefined, "a response stream has one reader at a time");
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** The reader stopped early: cancel the call. */
  async return(): Promise<IteratorResult<T>> {
    this.items.length = 0;
    if (!this.ended) {
      this.ended = true;
      this.controls?.cancel();
    }
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
