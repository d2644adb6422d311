import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { GrpcMessageParser, MalformedFrameError, MessageTooLargeError } from "./message-parser.js";

function frame(body: Uint8Array, flag = 0): Buffer {
  const framed = Buffer.alloc(body.length + 5);
  framed[0] = flag;
  framed.writeUInt32BE(body.length, 1);
  framed.set(body, 5);
  return framed;
}

function collect(parser: GrpcMessageParser, chunks: Uint8Array[]): string[] {
  const messages: string[] = [];
  for (const chunk of chunks) parser.push(chunk, (_compressed, body) => messages.push(Buffer.from(body).toString("hex")));
  return messages;
}

describe("GrpcMessageParser", () => {
  it("finds the same messages however the bytes are split into chunks", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 20 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(bodies.map((body) => frame(body)));
          const chunks: Uint8Array[] = [];
          let offset = 0;
          for (let index = 0; offset < stream.length; index++) {
            const size = cuts[index % cuts.length];
            chunks.push(stream.subarray(offset, offset + size));
            offset += size;
          }
          const parser = new GrpcMessageParser(1024);
          expect(collect(parser, chunks)).toEqual(bodies.map((body) => Buffer.from(body).toString("hex")));
          expect(parser.midMessage).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("parses a message fed one byte at a time, including an empty message", () => {
    const parser = new GrpcMessageParser(100);
    const bytes = Buffer.concat([frame(Buffer.from("hello")), frame(Buffer.alloc(0))]);
    const messages = collect(parser, [...bytes].map((byte) => Uint8Array.of(byte)));
    expect(messages).toEqual([Buffer.from("hello").toString("hex"), ""]);
  });

  it("reports the compressed flag", () => {
    const flags: boolean[] = [];
    new GrpcMessageParser(100).push(Buffer.concat([frame(Buffer.from("a"), 1), frame(Buffer.from("b"), 0)]), (compressed) => flags.push(compressed));
    expect(flags).toEqual([true, false]);
  });

  it("refuses a declared length above the limit from the header alone", () => {
    const parser = new GrpcMessageParser(10);
    const header = frame(Buffer.alloc(11)).subarray(0, 5);
    expect(() => parser.push(header, () => undefined)).toThrow(MessageTooLargeError);
    expect(() => new GrpcMessageParser(10).push(header.subarray(0, 3), () => undefined)).not.toThrow();
  });

  it("refuses a flag byte other than 0 or 1, also when the header arrives in pieces", () => {
    const bad = frame(Buffer.from("x"), 2);
    expect(() => new GrpcMessageParser(10).push(bad, () => undefined)).toThrow(MalformedFrameError);
    const parser = new GrpcMessageParser(10);
    parser.push(bad.subarray(0, 2), () => undefined);
    expect(() => parser.push(bad.subarray(2), () => undefined)).toThrow(/compressed-flag byte 2/);
  });

  it("knows when it holds part of a message", () => {
    const parser = new GrpcMessageParser(100);
    parser.push(frame(Buffer.from("abcdef")).subarray(0, 7), () => undefined);
    expect(parser.midMessage).toBe(true);
    expect(parser.describePending()).toBe("2 of 6 message bytes");
  });
});
