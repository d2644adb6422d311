/**
 * gRPC status codes and the error that carries one. Handlers throw a
 * GrpcError (or its subclass EtcdError) to answer with a given status; the
 * server turns anything else into UNKNOWN, as grpc-go does.
 */
export const GrpcStatus = {
  ok: 0,
  cancelled: 1,
  unknown: 2,
  invalidArgument: 3,
  deadlineExceeded: 4,
  notFound: 5,
  alreadyExists: 6,
  permissionDenied: 7,
  resourceExhausted: 8,
  failedPrecondition: 9,
  aborted: 10,
  outOfRange: 11,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  dataLoss: 15,
  unauthenticated: 16,
} as const;

export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const CODE_NAMES = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

export function grpcStatusName(code: number): string {
  return CODE_NAMES.get(code) ?? `code ${code}`;
}

/** A call outcome other than OK, with the exact text the client will see. */
export class GrpcError extends Error {
  override name = "GrpcError";
  constructor(
    readonly code: GrpcStatusCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * grpc-message is percent-encoded: bytes outside printable ASCII, and '%'
 * itself, become %XX of their UTF-8 encoding (gRPC over HTTP/2 spec).
 */
export function encodeGrpcMessage(text: string): string {
  let plain = true;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code > 0x7e || code === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(byte);
  }
  return out;
}

/** Inverse of encodeGrpcMessage; a malformed escape is kept as it is, as the spec asks. */
export function decodeGrpcMessage(text: string): string {
  if (!text.includes("%")) return text;
  const bytes: number[] = [];
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index);
    if (char === 0x25 && index + 2 < text.length && /^[0-9a-fA-F]{2}$/.test(text.slice(index + 1, index + 3))) {
      bytes.push(Number.parseInt(text.slice(index + 1, index + 3), 16));
      index += 2;
    } else bytes.push(...Buffer.from(String.fromCodePoint(text.codePointAt(index) ?? char), "utf8"));
    if (char >= 0xd800 && char <= 0xdbff) index++;
  }
  return Buffer.from(bytes).toString("utf8");
}
