/**
 * protobufjs codecs built at runtime from our .proto files, for the cold RPCs
 * (Cluster, Maintenance) where a few microseconds do not matter. They convert
 * protobufjs's Long values to the types the rest of Cairn uses: bigint for
 * ids, number for everything else (sizes, indexes, terms, revisions).
 *
 * tsc does not copy .proto files into dist/, so they are found in the source
 * tree: next to this file when run from src/ (vitest), or three levels up
 * from dist/src/api/protobuf when run with plain node.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import type { MessageCodec } from "./codec.js";

/** 64-bit fields that hold ids, and therefore must not pass through a number. */
const BIGINT_FIELD_NAMES = new Set(["ID", "clusterId", "memberId", "memberID", "targetID", "leader", "lease"]);
const LONG_TYPES = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);

export class ProtoFilesNotFoundError extends Error {
  override name = "ProtoFilesNotFoundError";
}

/** The directory holding rpc.proto, kv.proto and auth.proto. */
export function protoDirectory(): string {
  const candidates = [new URL("../proto/", import.meta.url), new URL("../../../../src/api/proto/", import.meta.url)];
  for (const candidate of candidates) {
    const directory = fileURLToPath(candidate);
    if (existsSync(`${directory}rpc.proto`)) return directory;
  }
  throw new ProtoFilesNotFoundError(`etcd .proto files not found; looked in ${candidates.map((url) => fileURLToPath(url)).join(" and ")}`);
}

let cachedRoot: protobuf.Root | undefined;

/** etcdserverpb, mvccpb and authpb, parsed once per process. */
export function etcdProtoRoot(): protobuf.Root {
  if (!cachedRoot) {
    const root = protobuf.loadSync(`${protoDirectory()}rpc.proto`);
    root.resolveAll();
    cachedRoot = root;
  }
  return cachedRoot;
}

function convertFields(type: protobuf.Type, object: Record<string, unknown>, direction: "toWire" | "fromWire"): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const value = object[field.name];
    if (value === undefined || value === null) continue;
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    let convert: (item: unknown) => unknown = (item) => item;
    if (nested) convert = (item) => convertFields(nested, item as Record<string, unknown>, direction);
    else if (LONG_TYPES.has(field.type)) {
      if (direction === "toWire") convert = (item) => (typeof item === "bigint" ? item.toString() : item);
      else convert = BIGINT_FIELD_NAMES.has(field.name) ? (item) => BigInt(item as string) : (item) => Number(item as string);
    }
    out[field.name] = field.repeated ? (value as unknown[]).map(convert) : convert(value);
  }
  return out;
}

/** A codec for one message type, e.g. "etcdserverpb.StatusResponse". */
export function reflectionCodec<T>(typeName: string): MessageCodec<T> {
  const type = etcdProtoRoot().lookupType(typeName);
  return {
    encode(value) {
      const plain = convertFields(type, value as Record<string, unknown>, "toWire");
      return type.encode(type.fromObject(plain)).finish();
    },
    decode(bytes) {
      const message = type.decode(bytes);
      const plain = type.toObject(message, { longs: String, enums: Number, defaults: true, arrays: true });
      return convertFields(type, plain, "fromWire") as T;
    },
  };
}
