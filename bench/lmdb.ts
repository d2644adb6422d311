/**
 * `npm run bench -- lmdb [--json] [--seconds 1.5] [--dir /path]`: LMDB apply
 * throughput of the KV state machine (puts applied in batches of 100 entries,
 * 256-byte values, one write transaction per batch with the applied index),
 * beside two raw lmdb anchors measured in the same run on the same disk:
 * 100 raw puts per transactionSync (what the MVCC layout costs on top), and
 * one putSync per transaction (a commit per write).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { open } from "lmdb";
import type { BenchContext } from "./common.js";
import { encodeCommand, putRequest } from "../src/kv/command.js";
import { Mvcc } from "../src/kv/mvcc.js";
import { LmdbKvStore } from "../src/storage/lmdb/lmdb-kv-store.js";
import type { Entry } from "../src/raft/types.js";

const BATCH_ENTRIES = 100;
const VALUE_BYTES = 256;
const DISTINCT_KEYS = 10_000;

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

function keyOf(i: number): Uint8Array {
  return new TextEncoder().encode(`bench/key-${String(i % DISTINCT_KEYS).padStart(6, "0")}`);
}

interface Measured {
  puts: number;
  elapsedMs: number;
  batchMs: number[];
  flushWaitMs: number;
}

async function timed(durationMs: number, step: (iteration: number) => number, flushed: () => Promise<unknown>): Promise<Measured> {
  const batchMs: number[] = [];
  let puts = 0;
  const start = performance.now();
  for (let iteration = 0; performance.now() - start < durationMs; iteration++) {
    const before = performance.now();
    puts += step(iteration);
    batchMs.push(performance.now() - before);
    // Let LMDB's flush callbacks and timers run, as the node's event loop would.
    await yieldToEventLoop();
  }
  const flushStart = performance.now();
  await flushed();
  const end = performance.now();
  return { puts, elapsedMs: end - start, batchMs: batchMs.sort((a, b) => a - b), flushWaitMs: end - flushStart };
}

function row(name: string, putsPerTransaction: number, measured: Measured) {
  return {
    case: name,
    putsPerTransaction,
    puts: measured.puts,
    putsPerSec: Math.round((measured.puts / measured.elapsedMs) * 1000),
    transactionP50Ms: Number(percentile(measured.batchMs, 0.5).toFixed(3)),
    transactionP99Ms: Number(percentile(measured.batchMs, 0.99).toFixed(3)),
    finalFlushWaitMs: Number(measured.flushWaitMs.toFixed(1)),
  };
}

export async function run(context: BenchContext): Promise<void> {
  const durationMs = Math.min(10, Math.max(0.2, Number(context.option("seconds", "1.5")))) * 1000;
  const root = mkdtempSync(join(context.option("dir", tmpdir()), "cairn-bench-lmdb-"));
  const value = new Uint8Array(VALUE_BYTES).fill(0x61);
  context.note(`# ${BATCH_ENTRIES} entries per batch, ${VALUE_BYTES}-byte values, ${DISTINCT_KEYS} distinct keys, ${durationMs} ms per case, data in ${root}`);
  try {
    // The state machine: decode, MVCC rules, revision + key-index + meta writes, one transaction per batch.
    const commands = Array.from({ length: DISTINCT_KEYS }, (_, i) => encodeCommand({ type: "put", request: putRequest(keyOf(i), value) }));
    for (const syncMode of ["commit", "background"] as const) {
      const store = LmdbKvStore.open(join(root, `mvcc-${syncMode}`), { syncMode });
      const mvcc = new Mvcc(store);
      let index = 0;
      const applied = await timed(durationMs, (iteration) => {
        const entries: Entry[] = [];
        for (let i = 0; i < BATCH_ENTRIES; i++) entries.push({ term: 1, index: ++index, type: 0, data: commands[(iteration * BATCH_ENTRIES + i) % DISTINCT_KEYS] });
        mvcc.applyEntries(entries);
        return BATCH_ENTRIES;
      }, () => store.flushed());
      context.report(row(`cairn mvcc applyEntries (sync ${syncMode})`, BATCH_ENTRIES, applied));
      await store.close();
    }

    const raw = open<Uint8Array, Uint8Array>({ path: join(root, "raw.mdb"), keyEncoding: "binary", encoding: "binary" });
    const keys = Array.from({ length: DISTINCT_KEYS }, (_, i) => keyOf(i));
    const batched = await timed(durationMs, (iteration) => {
      raw.transactionSync(() => {
        for (let i = 0; i < BATCH_ENTRIES; i++) raw.putSync(keys[(iteration * BATCH_ENTRIES + i) % DISTINCT_KEYS], value);
      });
      return BATCH_ENTRIES;
    }, () => Promise.resolve(raw.flushed));
    context.report(row("raw lmdb transactionSync", BATCH_ENTRIES, batched));
    const single = await timed(durationMs, (iteration) => {
      raw.putSync(keys[iteration % DISTINCT_KEYS], value);
      return 1;
    }, () => Promise.resolve(raw.flushed));
    context.report(row("raw lmdb putSync (anchor)", 1, single));
    await raw.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
