/**
 * Byte layouts of the MVCC tables. Everything is big-endian so that LMDB's
 * byte-wise key order is the numeric order, and user keys are escaped so that
 * (key, revision) pairs sort by key first, byte-wise, exactly like etcd.
 */
import { assert } from "../lib/assert.js";

const TWO_TO_32 = 0x1_0000_0000;

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function writeUint64(view: DataView, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, () => `uint64 field out of range: ${value}`);
  view.setUint32(offset, Math.floor(value / TWO_TO_32));
  view.setUint32(offset + 4, value >>> 0);
}

/** Reads a uint64 that must fit a safe integer; returns -1 when it does not (callers validating input check). */
export function readUint64(view: DataView, offset: number): number {
  const high = view.getUint32(offset);
  const low = view.getUint32(offset + 4);
  if (high >= 0x20_0000) return -1;
  return high * TWO_TO_32 + low;
}

/**
 * Escapes a user key: 0x00 becomes 0x00 0xFF. A key is then terminated with
 * 0x00 0x01, which sorts below both an escaped zero and any other byte, so a
 * key's entries come before the entries of every longer key it prefixes.
 */
export function escapeKey(key: Uint8Array): Uint8Array {
  let zeros = 0;
  for (const byte of key) if (byte === 0) zeros++;
  if (zeros === 0) return key;
  const out = new Uint8Array(key.length + zeros);
  let at = 0;
  for (const byte of key) {
    out[at++] = byte;
    if (byte === 0) out[at++] = 0xff;
  }
  return out;
}

export function unescapeKey(escaped: Uint8Array): Uint8Array {
  let zeros = 0;
  for (const byte of escaped) if (byte === 0) zeros++;
  if (zeros === 0) return escaped.slice();
  const out = new Uint8Array(escaped.length - zeros);
  let at = 0;
  for (let i = 0; i < escaped.length; i++) {
    out[at++] = escaped[i];
    if (escaped[i] === 0) {
      assert(escaped[i + 1] === 0xff, "bad key escape in key index");
      i++;
    }
  }
  return out;
}

/** Bytes of a key-index key after the escaped user key: terminator (2) + revision (16). */
export const KEY_INDEX_SUFFIX_BYTES = 18;
export const REVISION_KEY_BYTES = 16;

/** Key-index key: escaped key, terminator, then the revision inverted so the newest comes first. */
export function keyIndexKey(escapedKey: Uint8Array, main: number, sub: number): Uint8Array {
  const out = new Uint8Array(escapedKey.length + KEY_INDEX_SUFFIX_BYTES);
  out.set(escapedKey, 0);
  out[escapedKey.length] = 0x00;
  out[escapedKey.length + 1] = 0x01;
  const view = new DataView(out.buffer, out.byteOffset + escapedKey.length + 2, 16);
  writeUint64(view, 0, main);
  writeUint64(view, 8, sub);
  for (let i = escapedKey.length + 2; i < out.length; i++) out[i] = 0xff - out[i];
  return out;
}

/** Lowest and highest (exclusive) key-index keys of one user key's entries. */
export function keyIndexBoundsOf(escapedKey: Uint8Array): { start: Uint8Array; end: Uint8Array } {
  const start = new Uint8Array(escapedKey.length + 2);
  start.set(escapedKey, 0);
  start[escapedKey.length + 1] = 0x01;
  const end = start.slice();
  end[escapedKey.length + 1] = 0x02;
  return { start, end };
}

export interface KeyIndexKeyParts {
  /** The escaped user key followed by the terminator: equal for all entries of one key. */
  readonly prefix: Uint8Array;
  readonly main: number;
  readonly sub: number;
}

export function decodeKeyIndexKey(bytes: Uint8Array): KeyIndexKeyParts {
  assert(bytes.length >= KEY_INDEX_SUFFIX_BYTES, "key-index key too short");
  const revisionAt = bytes.length - 16;
  const inverted = new Uint8Array(16);
  for (let i = 0; i < 16; i++) inverted[i] = 0xff - bytes[revisionAt + i];
  const view = new DataView(inverted.buffer);
  const main = readUint64(view, 0);
  const sub = readUint64(view, 8);
  assert(main >= 0 && sub >= 0, "key-index revision out of range");
  return { prefix: bytes.subarray(0, revisionAt), main, sub };
}

/** The user key of a key-index prefix (escaped key + terminator). */
export function userKeyOfPrefix(prefix: Uint8Array): Uint8Array {
  return unescapeKey(prefix.subarray(0, prefix.length - 2));
}

export function revisionKey(main: number, sub: number): Uint8Array {
  const out = new Uint8Array(REVISION_KEY_BYTES);
  const view = new DataView(out.buffer);
  writeUint64(view, 0, main);
  writeUint64(view, 8, sub);
  return out;
}

export function decodeRevisionKey(bytes: Uint8Array): { main: number; sub: number } {
  assert(bytes.length === REVISION_KEY_BYTES, "revision key must be 16 bytes");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const main = readUint64(view, 0);
  const sub = readUint64(view, 8);
  assert(main >= 0 && sub >= 0, "revision out of range");
  return { main, sub };
}

/** What the key index stores per (key, revision): enough to count, filter and size a range without reading values. */
export interface IndexValue {
  readonly tombstone: boolean;
  readonly createRevision: number;
  readonly version: number;
  readonly lease: bigint;
  readonly valueLength: number;
}

const INDEX_VALUE_BYTES = 1 + 8 + 8 + 8 + 4;

export function encodeIndexValue(value: IndexValue): Uint8Array {
  const out = new Uint8Array(INDEX_VALUE_BYTES);
  const view = new DataView(out.buffer);
  out[0] = value.tombstone ? 1 : 0;
  writeUint64(view, 1, value.createRevision);
  writeUint64(view, 9, value.version);
  view.setBigInt64(17, value.lease);
  view.setUint32(25, value.valueLength);
  return out;
}

export function decodeIndexValue(bytes: Uint8Array): IndexValue {
  assert(bytes.length === INDEX_VALUE_BYTES, "key-index value has the wrong size");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    tombstone: bytes[0] === 1,
    createRevision: readUint64(view, 1),
    version: readUint64(view, 9),
    lease: view.getBigInt64(17),
    valueLength: view.getUint32(25),
  };
}

/** A stored revision: the full KeyValue (mod revision is the table key) or a tombstone. */
export interface RevisionRecord {
  readonly tombstone: boolean;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly version: number;
  readonly lease: bigint;
}

export function encodeRevisionRecord(record: RevisionRecord): Uint8Array {
  const out = new Uint8Array(1 + 4 + record.key.length + 24 + 4 + record.value.length);
  const view = new DataView(out.buffer);
  let at = 0;
  out[at++] = record.tombstone ? 1 : 0;
  view.setUint32(at, record.key.length);
  at += 4;
  out.set(record.key, at);
  at += record.key.length;
  writeUint64(view, at, record.createRevision);
  writeUint64(view, at + 8, record.version);
  view.setBigInt64(at + 16, record.lease);
  at += 24;
  view.setUint32(at, record.value.length);
  at += 4;
  out.set(record.value, at);
  return out;
}

export function decodeRevisionRecord(bytes: Uint8Array): RevisionRecord {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const tombstone = bytes[at++] === 1;
  const keyLength = view.getUint32(at);
  at += 4;
  const key = bytes.slice(at, at + keyLength);
  at += keyLength;
  const createRevision = readUint64(view, at);
  const version = readUint64(view, at + 8);
  const lease = view.getBigInt64(at + 16);
  at += 24;
  const valueLength = view.getUint32(at);
  at += 4;
  assert(at + valueLength === bytes.length, "revision record has the wrong size");
  return { tombstone, key, value: bytes.slice(at, at + valueLength), createRevision, version, lease };
}

const textEncoder = new TextEncoder();
export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}
