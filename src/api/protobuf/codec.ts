/**
 * The codec seam between the gRPC server and message types: hand-written
 * codecs for the hot RPCs and protobufjs-backed ones for the cold RPCs both
 * fit it.
 */
import { ProtoReader, ProtoWriter } from "./wire.js";

export interface MessageCodec<T> {
  encode(value: T): Uint8Array;
  /**
   * Optional fast path: the encoding preceded by `prefixBytes` bytes the caller
   * fills in (the gRPC frame header), saving a copy per message.
   */
  encodeWithPrefix?(value: T, prefixBytes: number): Uint8Array;
  /** Throws ProtobufDecodeError (or another Error) on bytes that are not a valid T. */
  decode(bytes: Uint8Array): T;
}

/** Builds a MessageCodec from a writer function and a reader function. */
export function handWrittenCodec<T>(
  write: (writer: ProtoWriter, value: T) => void,
  read: (reader: ProtoReader) => T,
): MessageCodec<T> {
  return {
    encode(value) {
      const writer = new ProtoWriter();
      write(writer, value);
      return writer.finish();
    },
    encodeWithPrefix(value, prefixBytes) {
      const writer = new ProtoWriter(prefixBytes);
      write(writer, value);
      return writer.finishWithPrefix();
    },
    decode(bytes) {
      return read(new ProtoReader(bytes));
    },
  };
}
