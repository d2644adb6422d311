import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Channel } from "./channel.js";
import { parseEndpoint } from "./endpoint.js";
import { EtcdClientError } from "./errors.js";
import { watchMethods } from "./methods.js";
import { createRequest } from "./watch.js";

/** A bare HTTP/2 server that reads the requests (as a real one does, so it never resets the stream) and answers every call with `status` while the client's side is still open. */
async function statusServer(status: number, message: string): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = http2.createServer();
  server.on("stream", (stream) => {
    stream.on("data", () => undefined);
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": String(status), "grpc-message": message }));
    // Ends the response (then the trailers go out) without waiting for the request side to end.
    stream.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("Channel", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("ends a bidirectional call when the server ends it with a status while the client's side is open", async () => {
    const server = await statusServer(9, "etcdserver: not capable");
    cleanups.push(() => server.close());
    const channel = new Channel(parseEndpoint(server.endpoint), { dialTimeoutMs: 1000, receiveMessageBytesMax: 1024 * 1024 });
    cleanups.push(() => channel.close());
    const call = channel.bidiStream(watchMethods.watch, { createRequest: createRequest("k", {}) }, new AbortController().signal);
    const outcome = (async () => {
      for await (const response of call.responses) void response;
    })();
    const bound = new Promise<"still open">((resolve) => setTimeout(() => resolve("still open"), 2000).unref());
    const settled = await Promise.race([outcome.then(() => "ended OK", (error: unknown) => error), bound]);
    expect(settled).toBeInstanceOf(EtcdClientError);
    expect((settled as EtcdClientError).message).toMatch(/not capable/);
    // The call is over: later requests are refused instead of written into a finished stream.
    expect(call.send({ createRequest: createRequest("other", {}) })).toBe(false);
  });
});
