import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { clusterId } from "../lib/ids.js";
import type { TransportLogger } from "./logger.js";
import { PeerTransport } from "./peer-transport.js";
import { NODE_1 } from "./test-helpers.js";

describe("transport logger", () => {
  it("accepts a pino logger as it is and writes structured lines through it", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger: TransportLogger = pino({ level: "info" }, sink);
    const transport = await PeerTransport.listen({
      nodeId: NODE_1, clusterId: clusterId(1), listenUrl: "http://127.0.0.1:0", logger,
      onMessage: () => {}, onSnapshot: async () => {},
    });
    await transport.close();
    const listening = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === "peer transport listening");
    expect(listening).toMatchObject({ url: transport.url, node: "8e9e05c52164694d" });
  });
});
