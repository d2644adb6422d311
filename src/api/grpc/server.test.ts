import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http2 from "node:http2";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { createGrpcServer, REQUEST_QUEUE_MESSAGES_MAX, type CallContext, type GrpcServer } from "./server.js";
import { GrpcError, GrpcStatus } from "./status.js";
import type { MessageCodec } from "../protobuf/codec.js";

const RECEIVE_MESSAGE_BYTES_MAX = 1024;

/** Messages are raw bytes; a first byte of 0xff is "not a valid message". */
const bytesCodec: MessageCodec<Buffer> = {
  encode: (value) => value,
  decode: (bytes) => {
    if (bytes[0] === 0xff) throw new Error("first byte 0xff is not allowed");
    return Buffer.from(bytes);
  },
};
const codecs = { request: bytesCodec, response: bytesCodec };

function frame(body: Buffer, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

interface RawResult {
  status: number | undefined;
  httpStatus: number | undefined;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  data: Buffer;
}

/** One call over a fresh HTTP/2 connection, with full control over headers and bytes. */
function rawCall(port: number, path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (received) => (responseHeaders = received));
    stream.on("trailers", (received) => (trailers = received));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => undefined);
    stream.on("close", () => {
      session.close();
      const grpcStatus = (trailers["grpc-status"] ?? responseHeaders["grpc-status"]) as string | undefined;
      resolve({
        status: grpcStatus === undefined ? undefined : Number(grpcStatus),
        httpStatus: responseHeaders[":status"] as number | undefined,
        grpcStatus,
        grpcMessage: (trailers["grpc-message"] ?? responseHeaders["grpc-message"]) as string | undefined,
        data: Buffer.concat(chunks),
      });
    });
    stream.end(body);
  });
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

describe("the http2 gRPC server", () => {
  let server: GrpcServer;
  let port: number;
  const slowSignal = deferred<unknown>();
  const cancelSignal = deferred<unknown>();
  const pushed = { sent: 0, finished: false };

  beforeAll(async () => {
    server = createGrpcServer({ receiveMessageBytesMax: RECEIVE_MESSAGE_BYTES_MAX });
    server.registerUnary("/test.Echo/Unary", codecs, async (request) => Buffer.concat([Buffer.from("echo:"), request]));
    server.registerUnary("/test.Echo/Fail", codecs, async (request) => {
      throw new GrpcError(GrpcStatus.failedPrecondition, request.toString());
    });
    server.registerUnary("/test.Echo/Untyped", codecs, async () => {
      throw new Error("something broke");
    });
    server.registerUnary("/test.Echo/Slow", codecs, async (_request, context: CallContext) => {
      context.signal.addEventListener("abort", () => slowSignal.resolve(context.signal.reason), { once: true });
      return new Promise<Buffer>(() => undefined);
    });
    server.registerUnary("/test.Echo/Context", codecs, async (_request, context) =>
      Buffer.from(JSON.stringify({ peer: context.peer, deadline: context.deadlineMs !== undefined, bytes: context.requestBytes, custom: context.metadata["x-custom"] })));
    server.registerServerStream("/test.Echo/Count", codecs, async (request, responses) => {
      for (let index = 0; index < request[0]; index++) await responses.send(Buffer.from([index]));
    });
    server.registerBidiStream("/test.Echo/Chat", codecs, async (requests, responses) => {
      for await (const request of requests) await responses.send(Buffer.concat([Buffer.from("re:"), request]));
    });
    server.registerBidiStream("/test.Echo/Ignore", codecs, async (_requests, _responses, context) => {
      await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
    });
    server.registerBidiStream("/test.Echo/Flood", codecs, async (requests, responses, context) => {
      context.signal.addEventListener("abort", () => cancelSignal.resolve(context.signal.reason), { once: true });
      for await (const _request of requests) {
        for (let index = 0; index < 2000; index++) {
          await responses.send(Buffer.alloc(1024, 1));
          pushed.sent++;
        }
        pushed.finished = true;
      }
    });
    port = (await server.listen(0)).port;
  });

  afterAll(async () => {
    await server.close(500);
  });

  it("answers a unary call with the message and status 0 in trailers", async () => {
    const result = await rawCall(port, "/test.Echo/Unary", frame(Buffer.from("hi")));
    expect(result.httpStatus).toBe(200);
    expect(result.status).toBe(GrpcStatus.ok);
    expect(result.data.subarray(5).toString()).toBe("echo:hi");
    expect(result.data.readUInt32BE(1)).toBe(7);
  });

  it("answers a message split across many small writes", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const stream = session.request({ ":method": "POST", ":path": "/test.Echo/Unary", "content-type": "application/grpc" });
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise((resolve) => stream.on("close", resolve));
    for (const byte of frame(Buffer.from("split"))) {
      stream.write(Buffer.of(byte));
      await new Promise((resolve) => setImmediate(resolve));
    }
    stream.end();
    await closed;
    session.close();
    expect(Buffer.concat(chunks).subarray(5).toString()).toBe("echo:split");
  });

  it("percent-encodes grpc-message so any text reaches a grpc-js client intact", async () => {
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const text = "50% done: ünïcode\nnew line";
    const failure = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest("/test.Echo/Fail", (value: Buffer) => value, (value: Buffer) => value, Buffer.from(text), (error) => resolve(error as grpc.ServiceError)));
    client.close();
    expect(failure.code).toBe(GrpcStatus.failedPrecondition);
    expect(failure.details).toBe(text);
  });

  it("answers an untyped handler error with UNKNOWN and its message", async () => {
    const result = await rawCall(port, "/test.Echo/Untyped", frame(Buffer.from("x")));
    expect(result.status).toBe(GrpcStatus.unknown);
    expect(result.grpcMessage).toBe("something broke");
  });

  it("gives the handler the peer, the deadline, the request size and custom metadata", async () => {
    const result = await rawCall(port, "/test.Echo/Context", frame(Buffer.from("abc")), { "grpc-timeout": "5S", "x-custom": "yes" });
    const context = JSON.parse(result.data.subarray(5).toString()) as { peer: string; deadline: boolean; bytes: number; custom: string };
    expect(context.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(context).toMatchObject({ deadline: true, bytes: 3, custom: "yes" });
  });

  it("refuses a request that is not gRPC with HTTP 415", async () => {
    const result = await rawCall(port, "/test.Echo/Unary", Buffer.from("{}"), { "content-type": "application/json" });
    expect(result.httpStatus).toBe(415);
  });

  it("answers a compressed message with INTERNAL, and an unsupported grpc-encoding with UNIMPLEMENTED", async () => {
    const compressed = await rawCall(port, "/test.Echo/Unary", frame(Buffer.from("zz"), true));
    expect(compressed.status).toBe(GrpcStatus.internal);
    expect(compressed.grpcMessage).toContain("compressed flag set");
    const gzip = await rawCall(port, "/test.Echo/Unary", frame(Buffer.from("zz"), true), { "grpc-encoding": "gzip" });
    expect(gzip.status).toBe(GrpcStatus.unimplemented);
    expect(gzip.grpcMessage).toContain("gzip");
  });

  it("answers a compressed-flag byte other than 0 or 1 with INTERNAL", async () => {
    const bad = frame(Buffer.from("x"));
    bad[0] = 7;
    const result = await rawCall(port, "/test.Echo/Unary", bad);
    expect(result.status).toBe(GrpcStatus.internal);
    expect(result.grpcMessage).toContain("compressed-flag byte 7");
  });

  it("refuses a declared length above the receive limit before the body arrives", async () => {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(0xffff_fff0, 1);
    const result = await rawCall(port, "/test.Echo/Unary", header);
    expect(result.status).toBe(GrpcStatus.resourceExhausted);
    expect(result.grpcMessage).toBe(`grpc: received message larger than max (${0xffff_fff0} vs. ${RECEIVE_MESSAGE_BYTES_MAX})`);
  });

  it("answers a stream that ends inside a message with INTERNAL", async () => {
    const truncated = frame(Buffer.from("0123456789")).subarray(0, 9);
    const result = await rawCall(port, "/test.Echo/Unary", truncated);
    expect(result.status).toBe(GrpcStatus.internal);
    expect(result.grpcMessage).toContain("ended inside a message (4 of 10 message bytes)");
    const headerOnly = await rawCall(port, "/test.Echo/Unary", Buffer.of(0, 0));
    expect(headerOnly.grpcMessage).toContain("2 of 5 header bytes");
  });

  it("answers a unary call without a message, or with two, with INTERNAL", async () => {
    const none = await rawCall(port, "/test.Echo/Unary", Buffer.alloc(0));
    expect(none.status).toBe(GrpcStatus.internal);
    expect(none.grpcMessage).toContain("without a request message");
    const two = await rawCall(port, "/test.Echo/Unary", Buffer.concat([frame(Buffer.from("a")), frame(Buffer.from("b"))]));
    expect(two.status).toBe(GrpcStatus.internal);
    expect(two.grpcMessage).toContain("more than one message");
  });

  it("answers a message that fails to decode with INTERNAL, as grpc-go does", async () => {
    const result = await rawCall(port, "/test.Echo/Unary", frame(Buffer.from([0xff, 1])));
    expect(result.status).toBe(GrpcStatus.internal);
    expect(result.grpcMessage).toBe("grpc: error unmarshalling request: first byte 0xff is not allowed");
  });

  it("answers a malformed grpc-timeout with INTERNAL", async () => {
    const result = await rawCall(port, "/test.Echo/Unary", frame(Buffer.from("x")), { "grpc-timeout": "soon" });
    expect(result.status).toBe(GrpcStatus.internal);
    expect(result.grpcMessage).toContain("malformed grpc-timeout");
  });

  it("answers unknown services and methods with UNIMPLEMENTED", async () => {
    expect((await rawCall(port, "/test.Echo/Missing", frame(Buffer.from("x")))).grpcMessage).toBe("unknown method Missing for service test.Echo");
    expect((await rawCall(port, "/other.Service/Call", frame(Buffer.from("x")))).grpcMessage).toBe("unknown service other.Service");
    const malformed = await rawCall(port, "/no-slash", frame(Buffer.from("x")));
    expect(malformed.status).toBe(GrpcStatus.unimplemented);
    expect(malformed.grpcMessage).toContain("malformed method name");
  });

  it("ends a call at its deadline with DEADLINE_EXCEEDED and aborts the handler's signal", async () => {
    const result = await rawCall(port, "/test.Echo/Slow", frame(Buffer.from("x")), { "grpc-timeout": "50m" });
    expect(result.status).toBe(GrpcStatus.deadlineExceeded);
    expect(result.grpcMessage).toBe("context deadline exceeded");
    expect(await slowSignal.promise).toMatchObject({ code: GrpcStatus.deadlineExceeded });
  });

  it("streams server responses in order", async () => {
    const result = await rawCall(port, "/test.Echo/Count", frame(Buffer.of(3)));
    expect(result.status).toBe(GrpcStatus.ok);
    expect([...result.data]).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 2]);
  });

  it("carries a bidirectional stream for a grpc-js client", async () => {
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest("/test.Echo/Chat", (value: Buffer) => value, (value: Buffer) => value);
    const replies: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (reply: Buffer) => replies.push(reply.toString()));
      call.on("end", resolve);
      call.on("error", reject);
    });
    for (const word of ["a", "b", "c"]) call.write(Buffer.from(word));
    call.end();
    await done;
    client.close();
    expect(replies).toEqual(["re:a", "re:b", "re:c"]);
  });

  it("makes a streaming handler wait when the client does not read, and cancels it when the client goes away", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const stream = session.request({ ":method": "POST", ":path": "/test.Echo/Flood", "content-type": "application/grpc" });
    stream.on("error", () => undefined);
    stream.pause();
    stream.write(frame(Buffer.from("go")));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // 2000 KiB were offered; HTTP/2 flow control (64 KiB window) plus stream buffers hold far less.
    expect(pushed.sent).toBeGreaterThan(0);
    expect(pushed.sent).toBeLessThan(500);
    expect(pushed.finished).toBe(false);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    expect(await cancelSignal.promise).toMatchObject({ code: GrpcStatus.cancelled });
    session.close();
  });

  it("keeps serving after garbage bytes, an HTTP/1.1 request and a half-open connection", async () => {
    const send = (bytes: Buffer | string): Promise<void> =>
      new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1", () => socket.end(bytes));
        socket.on("error", () => resolve());
        socket.on("close", () => resolve());
        socket.resume();
        // Some of these leave the server waiting for more bytes (the idle timeout covers that, tested below).
        setTimeout(() => socket.destroy(), 200).unref();
      });
    await send(Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 7919) & 0xff)));
    await send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    await send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x04\x00\x00\x00\x00\x00garbage after the preface");
    const halfOpen = net.connect(port, "127.0.0.1");
    halfOpen.on("error", () => undefined);
    const result = await rawCall(port, "/test.Echo/Unary", frame(Buffer.from("still here")));
    halfOpen.destroy();
    expect(result.status).toBe(GrpcStatus.ok);
    expect(result.data.subarray(5).toString()).toBe("echo:still here");
  });

  it("stops reading a bidirectional request stream whose handler does not read, so the client is flow-controlled", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const stream = session.request({ ":method": "POST", ":path": "/test.Echo/Ignore", "content-type": "application/grpc" });
    stream.on("error", () => undefined);
    const message = frame(Buffer.alloc(100, 2));
    const offeredBytes = message.length * 10_000;
    for (let index = 0; index < 10_000; index++) stream.write(message);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The server holds at most REQUEST_QUEUE_MESSAGES_MAX decoded messages plus one flow-control window.
    const acceptedBytes = offeredBytes - stream.writableLength;
    expect(acceptedBytes).toBeLessThan(REQUEST_QUEUE_MESSAGES_MAX * message.length + 256 * 1024);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    session.destroy();
  });
});

describe("idle connections", () => {
  it("are closed when no call is open for the idle timeout, whatever bytes they sent", async () => {
    const server = createGrpcServer({ sessionIdleTimeoutMs: 150 });
    const { port } = await server.listen(0);
    const closedAfterMs = (bytes: string): Promise<number> =>
      new Promise((resolve) => {
        const started = Date.now();
        const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes));
        socket.on("error", () => undefined);
        socket.on("close", () => resolve(Date.now() - started));
        socket.resume();
      });
    // A valid preface, then the header of an unknown frame type claiming megabytes that never come.
    const stalled = await closedAfterMs("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00garbage");
    expect(stalled).toBeLessThan(3000);
    await server.close(100);
  });
});

describe("closing the http2 gRPC server", () => {
  it("lets a running call finish, refuses new connections, and is idempotent", async () => {
    const server = createGrpcServer();
    const release = deferred<void>();
    const entered = deferred<void>();
    server.registerUnary("/test.Echo/Wait", codecs, async (request) => {
      entered.resolve();
      await release.promise;
      return request;
    });
    const { port } = await server.listen(0);
    const running = rawCall(port, "/test.Echo/Wait", frame(Buffer.from("late")));
    await entered.promise;
    const closing = server.close(5000);
    expect(server.close()).toBe(closing);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.on("connect", () => { socket.destroy(); resolve(false); });
      socket.on("error", () => resolve(true));
    });
    expect(refused).toBe(true);
    release.resolve();
    const result = await running;
    expect(result.status).toBe(GrpcStatus.ok);
    expect(result.data.subarray(5).toString()).toBe("late");
    await closing;
    await server.closed();
  });

  it("cancels calls still running when the grace period ends", async () => {
    const server = createGrpcServer();
    const aborted = deferred<unknown>();
    server.registerBidiStream("/test.Echo/Forever", codecs, async (_requests, _responses, context) => {
      context.signal.addEventListener("abort", () => aborted.resolve(context.signal.reason), { once: true });
      await new Promise(() => undefined);
    });
    const { port } = await server.listen(0);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => undefined);
    const stream = session.request({ ":method": "POST", ":path": "/test.Echo/Forever", "content-type": "application/grpc" });
    stream.on("error", () => undefined);
    stream.write(frame(Buffer.from("x")));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await server.close(100);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await aborted.promise).toMatchObject({ code: GrpcStatus.unavailable });
    session.destroy();
  });
});
