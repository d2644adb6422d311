import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DecoderFailedError, FrameTooLargeError, TransportError, UnknownFrameTypeError } from "./errors.js";
import { encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, FrameType, type FrameType as FrameTypeValue } from "./frame.js";

interface Decoded {
  type: FrameTypeValue;
  payload: number[];
}

function collectingDecoder(cap: number): { decoder: FrameDecoder; frames: Decoded[] } {
  const frames: Decoded[] = [];
  const decoder = new FrameDecoder(cap, (type, payload) => frames.push({ type, payload: Array.from(payload) }));
  return { decoder, frames };
}

const SAMPLE: Decoded[] = [
  { type: FrameType.Message, payload: [1, 2, 3, 4, 5, 6, 7] },
  { type: FrameType.Refuse, payload: [] },
  { type: FrameType.SnapshotChunk, payload: [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 255] },
];
const SAMPLE_BYTES = Buffer.concat(SAMPLE.map((frame) => encodeFrame(frame.type, Uint8Array.from(frame.payload))));

function feedInPieces(bytes: Buffer, cuts: number[]): Decoded[] {
  const { decoder, frames } = collectingDecoder(64);
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    decoder.push(bytes.subarray(start, cut));
    start = cut;
  }
  expect(decoder.bufferedBytes).toBe(0);
  return frames;
}

describe("frame decoder", () => {
  it("decodes frames fed one byte at a time", () => {
    const cuts = Array.from({ length: SAMPLE_BYTES.length - 1 }, (_, i) => i + 1);
    expect(feedInPieces(SAMPLE_BYTES, cuts)).toEqual(SAMPLE);
  });

  it("decodes frames whatever the split into one, two or three pieces", () => {
    const length = SAMPLE_BYTES.length;
    for (let first = 0; first <= length; first++) {
      for (let second = first; second <= length; second++) {
        expect(feedInPieces(SAMPLE_BYTES, [first, second]), `cut at ${first} and ${second}`).toEqual(SAMPLE);
      }
    }
  });

  it("decodes frames whatever the chunking (property)", () => {
    const length = SAMPLE_BYTES.length;
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: length - 1 })), (cuts) => {
      expect(feedInPieces(SAMPLE_BYTES, [...cuts].sort((a, b) => a - b))).toEqual(SAMPLE);
    }), { numRuns: 500 });
  });

  it("accepts a frame exactly at the cap and refuses one byte more as soon as the header is in", () => {
    const atCap = collectingDecoder(16);
    atCap.decoder.push(encodeFrame(FrameType.Message, new Uint8Array(16)));
    expect(atCap.frames).toHaveLength(1);
    const over = collectingDecoder(16);
    const header = encodeFrame(FrameType.Message, new Uint8Array(17)).subarray(0, FRAME_HEADER_BYTES);
    expect(() => over.decoder.push(header)).toThrow(FrameTooLargeError);
    expect(over.decoder.bufferedBytes).toBe(0);
    expect(over.frames).toHaveLength(0);
  });

  it("refuses a header of an unknown type, then refuses any further input", () => {
    const { decoder, frames } = collectingDecoder(64);
    const bad = Buffer.from([0, 0, 0, 1, 99, 0]);
    expect(() => decoder.push(bad)).toThrow(UnknownFrameTypeError);
    expect(() => decoder.push(SAMPLE_BYTES)).toThrow(DecoderFailedError);
    expect(frames).toHaveLength(0);
    expect(decoder.failed).toBe(true);
  });

  it("delivers the frames before a bad header in the same chunk, and none after", () => {
    const { decoder, frames } = collectingDecoder(64);
    const input = Buffer.concat([encodeFrame(FrameType.Message, new Uint8Array([1])), Buffer.from([0, 0, 0, 0, 0]), SAMPLE_BYTES]);
    expect(() => decoder.push(input)).toThrow(UnknownFrameTypeError);
    expect(frames).toEqual([{ type: FrameType.Message, payload: [1] }]);
  });

  it("lowers and raises the cap for frames not yet started", () => {
    const { decoder, frames } = collectingDecoder(4);
    expect(() => decoder.push(encodeFrame(FrameType.Message, new Uint8Array(8)))).toThrow(FrameTooLargeError);
    const raised = collectingDecoder(4);
    raised.decoder.setPayloadBytesMax(8);
    raised.decoder.push(encodeFrame(FrameType.Message, new Uint8Array(8)));
    expect(raised.frames).toHaveLength(1);
    expect(frames).toHaveLength(0);
  });

  it("stops delivering once halted from inside a frame handler", () => {
    const delivered: number[] = [];
    const decoder: FrameDecoder = new FrameDecoder(64, (type) => {
      delivered.push(type);
      decoder.halt();
    });
    decoder.push(SAMPLE_BYTES);
    expect(delivered).toEqual([FrameType.Message]);
    expect(() => decoder.push(SAMPLE_BYTES)).toThrow(DecoderFailedError);
  });

  it("hands out a payload split across chunks as a buffer of its own", () => {
    const payloads: Buffer[] = [];
    const decoder = new FrameDecoder(64, (_type, payload) => payloads.push(payload));
    const frame = encodeFrame(FrameType.Message, Uint8Array.from([1, 2, 3, 4]));
    const first = Buffer.from(frame.subarray(0, 7));
    decoder.push(first);
    decoder.push(Buffer.from(frame.subarray(7)));
    first.fill(0);
    expect(Array.from(payloads[0])).toEqual([1, 2, 3, 4]);
  });

  it("never crashes and never buffers past the cap on random garbage (property)", () => {
    const cap = 256;
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 8 }), (chunks) => {
      const { decoder } = collectingDecoder(cap);
      for (const chunk of chunks) {
        try {
          decoder.push(Buffer.from(chunk));
        } catch (error) {
          expect(error).toBeInstanceOf(TransportError);
          return;
        }
        expect(decoder.bufferedBytes).toBeLessThanOrEqual(cap + FRAME_HEADER_BYTES);
      }
    }), { numRuns: 2000 });
  });

  it("fails fast on garbage that claims a huge frame, holding only the header", () => {
    const { decoder } = collectingDecoder(1024);
    const garbage = Buffer.from("GET / HTTP/1.1\r\nHost: example\r\n\r\n");
    expect(() => decoder.push(garbage)).toThrow(TransportError);
    expect(decoder.bufferedBytes).toBe(0);
  });
});
