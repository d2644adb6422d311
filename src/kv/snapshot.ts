/**
 * Snapshots of the KV state: a point-in-time copy of the three tables as a
 * sequence of checksummed chunks, and the validating side that rebuilds a
 * store from them.
 *
 * Chunk frame (big-endian): magic u32 | kind u8 | sequence u32 |
 * payload length u32 | CRC32C u32 (over everything before it and the
 * payload) | payload. Chunk 0 is the header, then data chunks, then one
 * trailer with the totals. A chunk that fails any check is refused with its
 * sequence number; a stream that ends before the trailer is truncated.
 *
 * Consistency without a long read transaction: the copy reads at the
 * revision current when it starts (entries above it are skipped) and pauses
 * physical compaction meanwhile, so every chunk, read in its own short read,
 * belongs to the same point in time. Writes continue during the copy.
 */
import { assert } from "../lib/assert.js";
import { crc32c } from "../lib/crc32c.js";
import { decodeKeyIndexKey, readUint64, revisionKey, writeUint64 } from "./encoding.js";
import { SnapshotCorruptError, SnapshotFormatError, StaleReadError } from "./errors.js";
import type { Mvcc } from "./mvcc.js";
import { decodeMetaNumber, KV_FORMAT_VERSION, KvTable, MetaKey, type KvEntry, type KvStore } from "./store.js";

export const SNAPSHOT_FORMAT_VERSION = 1;
/** Data bytes a chunk carries before it is closed. */
export const SNAPSHOT_CHUNK_BYTES_TARGET = 1024 * 1024;
/** Largest payload a reader accepts (a single huge value still fits: etcd's request limit is 1.5 MiB). */
export const SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX = 16 * 1024 * 1024;

const MAGIC = 0x43534e50; // "CSNP"
const FRAME_HEADER_BYTES = 17;
const ChunkKind = { Header: 1, Data: 2, Trailer: 3 } as const;

export interface SnapshotHeader {
  readonly formatVersion: number;
  readonly kvFormatVersion: number;
  readonly appliedIndex: number;
  readonly term: number;
  readonly revision: number;
  readonly compactRevision: number;
}

export interface SnapshotTotals {
  readonly dataChunks: number;
  readonly records: number;
  readonly dataBytes: number;
}

function frame(kind: number, sequence: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC);
  out[4] = kind;
  view.setUint32(5, sequence);
  view.setUint32(9, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  let crc = crc32c(out, 0, 0, 13);
  crc = crc32c(payload, crc);
  view.setUint32(13, crc);
  return out;
}

function encodeHeader(header: SnapshotHeader): Uint8Array {
  const out = new Uint8Array(4 + 32);
  const view = new DataView(out.buffer);
  view.setUint16(0, header.formatVersion);
  view.setUint16(2, header.kvFormatVersion);
  writeUint64(view, 4, header.appliedIndex);
  writeUint64(view, 12, header.term);
  writeUint64(view, 20, header.revision);
  writeUint64(view, 28, header.compactRevision);
  return out;
}

function encodeTotals(totals: SnapshotTotals): Uint8Array {
  const out = new Uint8Array(20);
  const view = new DataView(out.buffer);
  view.setUint32(0, totals.dataChunks);
  writeUint64(view, 4, totals.records);
  writeUint64(view, 12, totals.dataBytes);
  return out;
}

/** The smallest key greater than `key`. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key, 0);
  return out;
}

const PHASES = [KvTable.Meta, KvTable.KeyIndex, KvTable.Revisions] as const;

export interface SnapshotRecord {
  readonly table: KvTable;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

const RECORD_OVERHEAD_BYTES = 9;

function encodeRecords(records: readonly SnapshotRecord[], bytes: number): Uint8Array {
  const out = new Uint8Array(4 + bytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, records.length);
  let at = 4;
  for (const record of records) {
    out[at] = record.table;
    view.setUint32(at + 1, record.key.length);
    out.set(record.key, at + 5);
    at += 5 + record.key.length;
    view.setUint32(at, record.value.length);
    out.set(record.value, at + 4);
    at += 4 + record.value.length;
  }
  assert(at === out.length, "snapshot record sizes disagree");
  return out;
}

/**
 * Produces a snapshot's chunks one at a time; each nextChunk() is one short
 * read of the store. close() (idempotent) lets compaction resume; the source
 * closes itself after the trailer.
 */
export class SnapshotSource {
  readonly header: SnapshotHeader;
  private readonly meta: KvEntry[];
  private readonly resume: () => void;
  private sequence = 0;
  private phase = 0;
  private resumeAfter: Uint8Array | null = null;
  private readonly totals = { dataChunks: 0, records: 0, dataBytes: 0 };
  private finished = false;
  private closed = false;
  private readonly generation: number;

  constructor(private readonly mvcc: Mvcc, private readonly chunkBytes = SNAPSHOT_CHUNK_BYTES_TARGET) {
    assert(chunkBytes > 0, "snapshot chunk size must be positive");
    this.generation = mvcc.generation();
    this.resume = mvcc.pauseCompaction();
    this.header = {
      formatVersion: SNAPSHOT_FORMAT_VERSION, kvFormatVersion: KV_FORMAT_VERSION, appliedIndex: mvcc.appliedIndex(),
      term: mvcc.appliedTerm(), revision: mvcc.currentRevision(), compactRevision: mvcc.compactRevision(),
    };
    // Meta is small and changes with every apply: take it now, with the header it belongs to.
    this.meta = mvcc.store.read((reader) => [...reader.range(KvTable.Meta)].map((entry) => ({ key: entry.key.slice(), value: entry.value.slice() })));
  }

  nextChunk(): Uint8Array | null {
    if (this.finished) return null;
    assert(!this.closed, "snapshot source used after close");
    if (this.mvcc.generation() !== this.generation) throw new StaleReadError();
    if (this.sequence === 0) return frame(ChunkKind.Header, this.sequence++, encodeHeader(this.header));
    if (this.phase >= PHASES.length) {
      this.finished = true;
      this.close();
      return frame(ChunkKind.Trailer, this.sequence++, encodeTotals(this.totals));
    }
    const records: SnapshotRecord[] = [];
    let bytes = 0;
    this.mvcc.store.read((reader) => {
      while (this.phase < PHASES.length && bytes < this.chunkBytes) {
        const table = PHASES[this.phase];
        let exhausted = true;
        const start = this.resumeAfter === null ? undefined : successor(this.resumeAfter);
        const source: Iterable<KvEntry> = table === KvTable.Meta
          ? this.meta.filter((entry) => start === undefined || compareKeys(entry.key, start) >= 0)
          : reader.range(table, table === KvTable.Revisions ? { start, end: revisionKey(this.header.revision + 1, 0) } : { start });
        for (const entry of source) {
          if (bytes >= this.chunkBytes) {
            exhausted = false;
            break;
          }
          this.resumeAfter = entry.key.slice();
          // Entries written after the snapshot started belong to a later state.
          if (table === KvTable.KeyIndex && decodeKeyIndexKey(entry.key).main > this.header.revision) continue;
          records.push({ table, key: entry.key.slice(), value: entry.value.slice() });
          bytes += RECORD_OVERHEAD_BYTES + entry.key.length + entry.value.length;
        }
        if (exhausted) {
          this.phase++;
          this.resumeAfter = null;
        }
      }
    });
    const payload = encodeRecords(records, bytes);
    this.totals.dataChunks++;
    this.totals.records += records.length;
    this.totals.dataBytes += payload.length;
    return frame(ChunkKind.Data, this.sequence++, payload);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.mvcc.generation() === this.generation) this.resume();
  }
}

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export type SnapshotChunk =
  | { readonly kind: "header"; readonly sequence: number; readonly header: SnapshotHeader }
  | { readonly kind: "data"; readonly sequence: number; readonly records: readonly SnapshotRecord[] }
  | { readonly kind: "trailer"; readonly sequence: number; readonly totals: SnapshotTotals };

/**
 * Push-style parser of a snapshot byte stream (pieces may split or join
 * chunks arbitrarily). Checks every frame before trusting it; buffers at most
 * one chunk.
 */
export class SnapshotDecoder {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private expected = 0;
  private header: SnapshotHeader | null = null;
  private trailer: SnapshotTotals | null = null;
  private readonly seen = { dataChunks: 0, records: 0, dataBytes: 0 };
  private consumedBytes = 0;
  private frameStart = 0;

  /**
   * Byte offset in the stream where the chunk being decoded starts (after an
   * error: the chunk at fault, or where a truncated stream ended), so a tool
   * reading a file can name the place.
   */
  get chunkOffset(): number {
    return this.frameStart;
  }

  push(piece: Uint8Array): SnapshotChunk[] {
    if (piece.length === 0) return [];
    if (this.trailer !== null) {
      this.frameStart = this.consumedBytes;
      throw new SnapshotCorruptError(this.expected, "bytes after the trailer");
    }
    this.pending.push(piece);
    this.pendingBytes += piece.length;
    const chunks: SnapshotChunk[] = [];
    for (;;) {
      this.frameStart = this.consumedBytes;
      if (this.pendingBytes < FRAME_HEADER_BYTES) break;
      const head = this.peek(FRAME_HEADER_BYTES);
      const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
      if (view.getUint32(0) !== MAGIC) throw new SnapshotCorruptError(this.expected, "bad magic: not a Cairn snapshot chunk");
      const payloadLength = view.getUint32(9);
      if (payloadLength > SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX) {
        throw new SnapshotCorruptError(this.expected, `payload of ${payloadLength} bytes exceeds ${SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX}`);
      }
      if (this.pendingBytes < FRAME_HEADER_BYTES + payloadLength) break;
      const bytes = this.take(FRAME_HEADER_BYTES + payloadLength);
      chunks.push(this.decodeFrame(bytes));
      this.consumedBytes += bytes.length;
      if (this.trailer !== null) {
        this.frameStart = this.consumedBytes;
        if (this.pendingBytes > 0) throw new SnapshotCorruptError(this.expected, "bytes after the trailer");
        break;
      }
    }
    return chunks;
  }

  /** Call at the end of the stream: returns the header and totals, or throws if the stream was cut short. */
  finish(): { header: SnapshotHeader; totals: SnapshotTotals } {
    if (this.pendingBytes > 0) throw new SnapshotCorruptError(this.expected, `stream truncated inside the chunk (${this.pendingBytes} bytes of it arrived)`);
    if (this.header === null) throw new SnapshotCorruptError(0, "stream ended before the header");
    if (this.trailer === null) throw new SnapshotCorruptError(this.expected, "stream truncated: ended before the trailer");
    return { header: this.header, totals: this.trailer };
  }

  private peek(count: number): Uint8Array {
    if (this.pending[0].length >= count) return this.pending[0].subarray(0, count);
    const joined = this.join();
    return joined.subarray(0, count);
  }

  private join(): Uint8Array {
    const joined = new Uint8Array(this.pendingBytes);
    let at = 0;
    for (const piece of this.pending) {
      joined.set(piece, at);
      at += piece.length;
    }
    this.pending = [joined];
    return joined;
  }

  private take(count: number): Uint8Array {
    const first = this.pending[0].length >= count ? this.pending[0] : this.join();
    const taken = first.subarray(0, count);
    const rest = first.subarray(count);
    this.pending = rest.length > 0 ? [rest, ...this.pending.slice(1)] : this.pending.slice(1);
    this.pendingBytes -= count;
    return taken;
  }

  private decodeFrame(bytes: Uint8Array): SnapshotChunk {
    const sequence = this.expected;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const payload = bytes.subarray(FRAME_HEADER_BYTES);
    let crc = crc32c(bytes, 0, 0, 13);
    crc = crc32c(payload, crc);
    if (crc !== view.getUint32(13)) throw new SnapshotCorruptError(sequence, "checksum mismatch");
    const found = view.getUint32(5);
    if (found !== sequence) throw new SnapshotCorruptError(sequence, `out of order: found chunk ${found}`);
    this.expected++;
    const kind = bytes[4];
    if (sequence === 0 && kind !== ChunkKind.Header) throw new SnapshotCorruptError(sequence, "the first chunk is not a header");
    if (sequence !== 0 && kind === ChunkKind.Header) throw new SnapshotCorruptError(sequence, "a second header");
    switch (kind) {
      case ChunkKind.Header: return { kind: "header", sequence, header: this.decodeHeader(sequence, payload) };
      case ChunkKind.Data: return { kind: "data", sequence, records: this.decodeData(sequence, payload) };
      case ChunkKind.Trailer: return { kind: "trailer", sequence, totals: this.decodeTrailer(sequence, payload) };
      default: throw new SnapshotCorruptError(sequence, `unknown chunk kind ${kind}`);
    }
  }

  private decodeHeader(sequence: number, payload: Uint8Array): SnapshotHeader {
    if (payload.length !== 36) throw new SnapshotCorruptError(sequence, "header has the wrong size");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const formatVersion = view.getUint16(0);
    if (formatVersion > SNAPSHOT_FORMAT_VERSION) throw new SnapshotFormatError(formatVersion, SNAPSHOT_FORMAT_VERSION);
    const kvFormatVersion = view.getUint16(2);
    if (kvFormatVersion > KV_FORMAT_VERSION) throw new SnapshotFormatError(kvFormatVersion, KV_FORMAT_VERSION);
    const numbers = [4, 12, 20, 28].map((offset) => readUint64(view, offset));
    if (numbers.some((value) => value < 0)) throw new SnapshotCorruptError(sequence, "header number out of range");
    const [appliedIndex, term, revision, compactRevision] = numbers;
    if (compactRevision > revision) throw new SnapshotCorruptError(sequence, "compact revision above the revision");
    this.header = { formatVersion, kvFormatVersion, appliedIndex, term, revision, compactRevision };
    return this.header;
  }

  private decodeData(sequence: number, payload: Uint8Array): SnapshotRecord[] {
    const fail = (reason: string): never => {
      throw new SnapshotCorruptError(sequence, reason);
    };
    if (payload.length < 4) fail("data chunk too short");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const count = view.getUint32(0);
    const records: SnapshotRecord[] = [];
    let at = 4;
    for (let i = 0; i < count; i++) {
      if (at + 5 > payload.length) fail(`record ${i} truncated`);
      const table = payload[at];
      if (table !== KvTable.Revisions && table !== KvTable.KeyIndex && table !== KvTable.Meta) fail(`record ${i} names unknown table ${table}`);
      const keyLength = view.getUint32(at + 1);
      at += 5;
      if (keyLength === 0 || at + keyLength + 4 > payload.length) fail(`record ${i} key length ${keyLength} is impossible`);
      const key = payload.slice(at, at + keyLength);
      at += keyLength;
      const valueLength = view.getUint32(at);
      at += 4;
      if (at + valueLength > payload.length) fail(`record ${i} value length ${valueLength} is impossible`);
      records.push({ table: table as KvTable, key, value: payload.slice(at, at + valueLength) });
      at += valueLength;
    }
    if (at !== payload.length) fail(`${payload.length - at} bytes after the last record`);
    this.seen.dataChunks++;
    this.seen.records += records.length;
    this.seen.dataBytes += payload.length;
    return records;
  }

  private decodeTrailer(sequence: number, payload: Uint8Array): SnapshotTotals {
    if (payload.length !== 20) throw new SnapshotCorruptError(sequence, "trailer has the wrong size");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const totals = { dataChunks: view.getUint32(0), records: readUint64(view, 4), dataBytes: readUint64(view, 12) };
    if (totals.dataChunks !== this.seen.dataChunks || totals.records !== this.seen.records || totals.dataBytes !== this.seen.dataBytes) {
      throw new SnapshotCorruptError(sequence, `trailer totals ${JSON.stringify(totals)} disagree with the stream ${JSON.stringify(this.seen)}`);
    }
    this.trailer = totals;
    return totals;
  }
}

/**
 * Writes a snapshot stream into an EMPTY store, one write transaction per
 * data chunk, and checks at the end that the stream was whole and that the
 * copied meta matches the header. The caller makes the result visible
 * atomically (see the stores' install functions) only after finish().
 */
export class SnapshotInstaller {
  private readonly decoder = new SnapshotDecoder();

  constructor(private readonly target: KvStore) {
    const empty = target.read((reader) => {
      for (const table of PHASES) for (const _entry of reader.range(table)) return false;
      return true;
    });
    assert(empty, "snapshot install target must be empty");
  }

  push(piece: Uint8Array): void {
    for (const chunk of this.decoder.push(piece)) {
      if (chunk.kind !== "data") continue;
      this.target.write((writer) => {
        for (const record of chunk.records) writer.put(record.table, record.key, record.value);
      });
    }
  }

  finish(): SnapshotHeader {
    const { header } = this.decoder.finish();
    const meta = this.target.read((reader) => ({
      applied: decodeMetaNumber(reader.get(KvTable.Meta, MetaKey.appliedIndex)),
      revision: decodeMetaNumber(reader.get(KvTable.Meta, MetaKey.currentRevision)),
      compact: decodeMetaNumber(reader.get(KvTable.Meta, MetaKey.compactRevision)),
    }));
    if (meta.applied !== header.appliedIndex || meta.revision !== header.revision || meta.compact !== header.compactRevision) {
      throw new SnapshotCorruptError(0, `header (index ${header.appliedIndex}, revision ${header.revision}) disagrees with the copied state (index ${meta.applied}, revision ${meta.revision})`);
    }
    return header;
  }
}
