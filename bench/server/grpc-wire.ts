/**
 * The few gRPC messages the server benchmark sends, encoded and decoded by
 * hand over node:http2: a grpc-js client costs 300–500 µs of CPU per request
 * on our machines, which would make the load generator the bottleneck.
 */
import http2 from "node:http2";
import { ProtoReader, WireType } from "../../src/api/protobuf/wire.js";

export const PUT_PATH = "/etcdserverpb.KV/Put";
export const STATUS_PATH = "/etcdserverpb.Maintenance/Status";
export const COMPACT_PATH = "/etcdserverpb.KV/Compact";
export const GRPC_REQUEST_HEADERS = { ":method": "POST", "content-type": "application/grpc", te: "trailers" } as const;

const GRPC_PREFIX_BYTES = 5;
/** Keys are fixed-width so a request is a template copy plus a few digits. */
export const KEY_DIGITS = 9;
const KEY_PREFIX = "bench/server/";
export const KEY_BYTES = KEY_PREFIX.length + KEY_DIGITS;
/** Values must fit a two-byte varint length in the template. */
export const VALUE_BYTES_MAX = 16_383;

export class BenchWireError extends Error {
  override name = "BenchWireError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

/**
 * Builds framed PutRequests (key = field 1, value = field 2) for keys
 * `bench/server/<9 digits>`: one template per generator, then each request is
 * a copy with the key's digits written in.
 */
export class PutRequestEncoder {
  private readonly template: Buffer;
  private readonly keyDigitsOffset: number;

  constructor(value: Uint8Array) {
    if (value.length < 1 || value.length > VALUE_BYTES_MAX) {
      throw new BenchWireError(`value size must be 1..${VALUE_BYTES_MAX} bytes, got ${value.length}`);
    }
    const body = Buffer.concat([
      Buffer.of(0x0a, KEY_BYTES), Buffer.from(KEY_PREFIX + "0".repeat(KEY_DIGITS), "latin1"),
      Buffer.of(0x12, ...varint(value.length)), value,
    ]);
    this.template = Buffer.alloc(GRPC_PREFIX_BYTES + body.length);
    this.template.writeUInt32BE(body.length, 1);
    body.copy(this.template, GRPC_PREFIX_BYTES);
    this.keyDigitsOffset = GRPC_PREFIX_BYTES + 2 + KEY_PREFIX.length;
  }

  encode(keyNumber: number): Buffer {
    if (!Number.isSafeInteger(keyNumber) || keyNumber < 0 || keyNumber >= 10 ** KEY_DIGITS) {
      throw new BenchWireError(`key number must be 0..${10 ** KEY_DIGITS - 1}, got ${keyNumber}`);
    }
    const framed = Buffer.allocUnsafe(this.template.length);
    this.template.copy(framed);
    let rest = keyNumber;
    for (let position = this.keyDigitsOffset + KEY_DIGITS - 1; position >= this.keyDigitsOffset; position--) {
      framed[position] = 0x30 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
    return framed;
  }
}

/** A framed CompactionRequest: revision = field 1, physical = field 2. */
export function compactionRequest(revision: number, physical: boolean): Buffer {
  const body = Buffer.of(0x08, ...varint(revision), ...(physical ? [0x10, 0x01] : []));
  const framed = Buffer.alloc(GRPC_PREFIX_BYTES + body.length);
  framed.writeUInt32BE(body.length, 1);
  body.copy(framed, GRPC_PREFIX_BYTES);
  return framed;
}

/** The message bodies of a length-prefixed gRPC response (compression is never negotiated here). */
export function unframe(bytes: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  let position = 0;
  while (position < bytes.length) {
    if (bytes.length - position < GRPC_PREFIX_BYTES) throw new BenchWireError("truncated gRPC frame prefix");
    if (bytes[position] !== 0) throw new BenchWireError("compressed gRPC frame; the benchmark never asks for compression");
    const length = bytes.readUInt32BE(position + 1);
    const start = position + GRPC_PREFIX_BYTES;
    if (length > bytes.length - start) throw new BenchWireError(`gRPC frame of ${length} bytes runs past the ${bytes.length}-byte body`);
    messages.push(bytes.subarray(start, start + length));
    position = start + length;
  }
  return messages;
}

export interface MemberStatus {
  memberId: bigint;
  /** The store's current revision (header.revision). */
  revision: number;
  leaderId: bigint;
  raftTerm: number;
  raftIndex: number;
  version: string;
}

/** The fields of a Maintenance StatusResponse the benchmark needs (member id comes from its header). */
export function decodeStatusResponse(body: Uint8Array): MemberStatus {
  const status: MemberStatus = { memberId: 0n, revision: 0, leaderId: 0n, raftTerm: 0, raftIndex: 0, version: "" };
  const reader = new ProtoReader(body);
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: {
        reader.expect(WireType.lengthDelimited, "header");
        const header = reader.subReader();
        while (header.nextField()) {
          if (header.fieldNumber === 2) {
            header.expect(WireType.varint, "header.member_id");
            status.memberId = header.uint64Bigint();
          } else if (header.fieldNumber === 3) {
            header.expect(WireType.varint, "header.revision");
            status.revision = header.int64Number();
          } else header.skip();
        }
        break;
      }
      case 2: reader.expect(WireType.lengthDelimited, "version"); status.version = reader.string(); break;
      case 4: reader.expect(WireType.varint, "leader"); status.leaderId = reader.uint64Bigint(); break;
      case 5: reader.expect(WireType.varint, "raftIndex"); status.raftIndex = reader.int64Number(); break;
      case 6: reader.expect(WireType.varint, "raftTerm"); status.raftTerm = reader.int64Number(); break;
      default: reader.skip();
    }
  }
  return status;
}

export interface UnaryAnswer {
  grpcStatus: string;
  grpcMessage: string;
  messages: Buffer[];
}

/** One unary call on an open session, bounded by `timeoutMs`. */
export async function callUnary(session: http2.ClientHttp2Session, path: string, framedRequest: Buffer, timeoutMs: number): Promise<UnaryAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ...GRPC_REQUEST_HEADERS, ":path": path });
    const chunks: Buffer[] = [];
    let grpcStatus = "";
    let grpcMessage = "";
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new BenchWireError(`${path} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const take = (headers: http2.IncomingHttpHeaders): void => {
      if (headers["grpc-status"] !== undefined) grpcStatus = String(headers["grpc-status"]);
      if (headers["grpc-message"] !== undefined) grpcMessage = decodeURIComponent(String(headers["grpc-message"]));
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error) => {
      clearTimeout(timer);
      reject(new BenchWireError(`${path} failed: ${error.message}`, { cause: error }));
    });
    stream.on("close", () => {
      clearTimeout(timer);
      try {
        resolve({ grpcStatus, grpcMessage, messages: grpcStatus === "0" ? unframe(Buffer.concat(chunks)) : [] });
      } catch (error) {
        reject(error);
      }
    });
    stream.end(framedRequest);
  });
}

/** Opens an HTTP/2 cleartext session (prior knowledge, as gRPC clients do), bounded by `timeoutMs`. */
export async function connect(port: number, timeoutMs: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.destroy();
      reject(new BenchWireError(`no HTTP/2 session to 127.0.0.1:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    session.once("connect", () => {
      clearTimeout(timer);
      session.removeAllListeners("error");
      session.on("error", () => undefined);
      resolve(session);
    });
    session.once("error", (error) => {
      clearTimeout(timer);
      session.destroy();
      reject(new BenchWireError(`cannot connect to 127.0.0.1:${port}: ${error.message}`, { cause: error }));
    });
  });
}

/** An empty framed request (StatusRequest has no fields). */
export const EMPTY_FRAMED_REQUEST = Buffer.alloc(GRPC_PREFIX_BYTES);
