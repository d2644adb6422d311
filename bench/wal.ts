/**
 * `npm run bench -- wal [--json] [--seconds N] [--dir PATH] [--segment-mib N]`
 *
 * First the anchor: how many write+fdatasync pairs per second this disk does
 * one after another (the physical limit a WAL without group commit would
 * hit). Then the WAL with 1, 16, 64 and 256 concurrent appenders, each
 * appending one 256-byte entry at a time to its own group and waiting for it
 * to be durable. Group commit shows as appendsPerSync above 1 and as
 * appendsPerSec above the anchor.
 *
 * --segment-mib sets the WAL's rotation size (default: the WAL's own, 64
 * MiB). A size larger than a row writes in its seconds means the row never
 * rotates, so no segment is zero-filled while it is measured: a diagnostic of
 * what preallocation costs the tail, not a way to run the target.
 *
 * Target (issue 3): at 64 appenders at least 20 appends per fdatasync, with
 * an append p99 of no more than three fdatasync latencies (the anchor's p50).
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterId, groupId, nodeId } from "../src/lib/ids.js";
import { NodeFileSystem } from "../src/storage/fs/node-file-system.js";
import { Wal } from "../src/storage/wal/wal.js";
import type { BenchContext } from "./common.js";

const ENTRY_BYTES = 256;
const APPENDER_COUNTS = [1, 16, 64, 256];
const TARGET_APPENDERS = 64;
const TARGET_APPENDS_PER_SYNC_MIN = 20;
const TARGET_P99_IN_FDATASYNCS_MAX = 3;
/** Size of the anchor's preallocated file; its writes wrap around inside it. */
const ANCHOR_FILE_BYTES = 16 * 1024 * 1024;
/** Latency samples kept per row; beyond it the run simply stops recording (it is bounded by time anyway). */
const SAMPLES_MAX = 4_000_000;

export async function run(context: BenchContext): Promise<void> {
  const seconds = Number(context.option("seconds", "3"));
  if (!(seconds > 0 && seconds <= 60)) throw new RangeError(`--seconds must be in (0, 60], got ${seconds}`);
  const segmentMib = context.option("segment-mib", "");
  const segmentBytes = segmentMib === "" ? undefined : Number(segmentMib) * 1024 * 1024;
  if (segmentBytes !== undefined && !(Number.isInteger(segmentBytes) && segmentBytes >= 1024 * 1024 && segmentBytes <= 4 * 1024 ** 3)) {
    throw new RangeError(`--segment-mib must be a whole number of MiB from 1 to 4096, got ${segmentMib}`);
  }
  const scratch = fs.mkdtempSync(join(context.option("dir", tmpdir()), "cairn-bench-wal-"));
  try {
    const anchor = await measureFdatasync(join(scratch, "anchor"), seconds);
    const syncsPerSec = anchor.count / anchor.seconds;
    const syncP50Ms = percentile(anchor.latencies, 0.5);
    context.report({
      row: "fdatasync (disk limit)", appenders: 1, appendsPerSec: round(syncsPerSec), appendsPerSync: 1,
      appendP50Ms: round(syncP50Ms, 3), appendP99Ms: round(percentile(anchor.latencies, 0.99), 3),
      ratioToFdatasync: 1, p99InFdatasyncs: round(percentile(anchor.latencies, 0.99) / syncP50Ms, 2), rotations: null, meetsTarget: null,
    });
    for (const appenders of APPENDER_COUNTS) {
      const result = await measureWal(join(scratch, `wal-${appenders}`), appenders, seconds, segmentBytes);
      const appendsPerSec = result.appends / result.seconds;
      const appendsPerSync = result.appends / Math.max(1, result.syncs);
      const p99 = percentile(result.latencies, 0.99);
      context.report({
        row: "wal append", appenders, appendsPerSec: round(appendsPerSec), appendsPerSync: round(appendsPerSync, 2),
        appendP50Ms: round(percentile(result.latencies, 0.5), 3), appendP99Ms: round(p99, 3),
        ratioToFdatasync: round(appendsPerSec / syncsPerSec, 2), p99InFdatasyncs: round(p99 / syncP50Ms, 2),
        rotations: result.rotations,
        meetsTarget: appenders === TARGET_APPENDERS
          ? appendsPerSync >= TARGET_APPENDS_PER_SYNC_MIN && p99 <= TARGET_P99_IN_FDATASYNCS_MAX * syncP50Ms
          : null,
      });
    }
    context.note(`target: at ${TARGET_APPENDERS} appenders >= ${TARGET_APPENDS_PER_SYNC_MIN} appends per fdatasync, p99 <= ${TARGET_P99_IN_FDATASYNCS_MAX} fdatasync p50s`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Sequential 256-byte writes, each followed by fdatasync, through the same
 * libuv path the WAL uses, into a preallocated file as the WAL writes into
 * preallocated segments (appending to a growing file would also sync its
 * size, a slower and unfair anchor).
 */
async function measureFdatasync(path: string, seconds: number): Promise<{ count: number; seconds: number; latencies: number[] }> {
  const fd = fs.openSync(path, "w");
  fs.writeSync(fd, Buffer.alloc(ANCHOR_FILE_BYTES), 0, ANCHOR_FILE_BYTES, 0);
  fs.fsyncSync(fd);
  const data = Buffer.alloc(ENTRY_BYTES, 0x5a);
  const latencies: number[] = [];
  const write = (position: number): Promise<void> => new Promise((resolve, reject) => fs.write(fd, data, 0, data.length, position, (error) => (error ? reject(error) : resolve())));
  const sync = (): Promise<void> => new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let count = 0;
  try {
    while (performance.now() < deadline) {
      const began = performance.now();
      await write((count * ENTRY_BYTES) % ANCHOR_FILE_BYTES);
      await sync();
      if (latencies.length < SAMPLES_MAX) latencies.push(performance.now() - began);
      count++;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { count, seconds: (performance.now() - start) / 1000, latencies };
}

async function measureWal(
  directory: string, appenders: number, seconds: number, segmentBytes: number | undefined,
): Promise<{ appends: number; syncs: number; rotations: number; seconds: number; latencies: number[] }> {
  const wal = await Wal.open({ fileSystem: new NodeFileSystem(), directory, clusterId: clusterId(1), nodeId: nodeId(1), segmentBytes });
  // Let the background preallocation of the next segment finish so it does not compete with the measurement.
  await wal.settled();
  const data = Buffer.alloc(ENTRY_BYTES, 0xa5);
  const latencies: number[] = [];
  const before = wal.stats();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(Array.from({ length: appenders }, async (_, appender) => {
    const group = groupId(appender);
    for (let index = 1; performance.now() < deadline; index++) {
      const began = performance.now();
      await wal.append([{ type: "entries", group, entries: [{ index, term: 1, type: 0, data }] }]);
      if (latencies.length < SAMPLES_MAX) latencies.push(performance.now() - began);
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  const after = wal.stats();
  await wal.close();
  fs.rmSync(directory, { recursive: true, force: true });
  return { appends: after.appends - before.appends, syncs: after.syncs - before.syncs, rotations: after.rotations - before.rotations, seconds: elapsed, latencies };
}

function percentile(values: number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
