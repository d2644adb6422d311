import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { decodeGrpcMessage, encodeGrpcMessage } from "./status.js";
import { formatGrpcTimeout, MalformedTimeoutError, parseGrpcTimeoutMs } from "./timeout.js";

describe("grpc-message encoding", () => {
  it("leaves printable ASCII alone and escapes '%' and everything else", () => {
    expect(encodeGrpcMessage("etcdserver: no leader")).toBe("etcdserver: no leader");
    expect(encodeGrpcMessage("100%\n")).toBe("100%25%0A");
    expect(encodeGrpcMessage("é")).toBe("%C3%A9");
  });

  it("decodes what it encodes, for any text", () => {
    fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (text) => {
      const encoded = encodeGrpcMessage(text);
      expect(encoded).toMatch(/^[\x20-\x7e]*$/);
      expect(decodeGrpcMessage(encoded)).toBe(text);
    }), { numRuns: 500 });
  });

  it("keeps a malformed escape as it is", () => {
    expect(decodeGrpcMessage("50%zz")).toBe("50%zz");
  });
});

describe("grpc-timeout", () => {
  it("parses every unit into milliseconds", () => {
    expect(parseGrpcTimeoutMs("2H")).toBe(7_200_000);
    expect(parseGrpcTimeoutMs("3M")).toBe(180_000);
    expect(parseGrpcTimeoutMs("5S")).toBe(5000);
    expect(parseGrpcTimeoutMs("250m")).toBe(250);
    expect(parseGrpcTimeoutMs("1500u")).toBeCloseTo(1.5);
    expect(parseGrpcTimeoutMs("2000000n")).toBeCloseTo(2);
    expect(parseGrpcTimeoutMs(undefined)).toBeUndefined();
    expect(parseGrpcTimeoutMs(formatGrpcTimeout(1234))).toBe(1234);
  });

  it("refuses more than 8 digits, a missing unit or an unknown unit", () => {
    for (const bad of ["123456789S", "100", "5s", "", "-1S", "1.5S"]) {
      expect(() => parseGrpcTimeoutMs(bad)).toThrow(MalformedTimeoutError);
    }
  });
});
