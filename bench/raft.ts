/**
 * `npm run bench -- raft`: the consensus core alone — three in-memory nodes,
 * no I/O, messages delivered synchronously, proposals in batches. Entries
 * committed per second here is the ceiling every later layer (WAL, transport,
 * server) is measured against. Heap bytes allocated per entry are measured
 * in a child process whose young generation is large enough that no
 * scavenge runs during the measured window (checked, and reported).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PerformanceObserver } from "node:perf_hooks";
import { createPrng } from "../src/lib/prng.js";
import { groupId, nodeId } from "../src/lib/ids.js";
import { EntryType, MemoryStorage, RawNode, Role, confState, decodeConfChange, type Message } from "../src/raft/mod.js";
import type { BenchContext, Row } from "./common.js";

const ENTRY_BYTES = 256;
const BATCH_SIZES = [1, 16, 64, 256];

interface Member { node: RawNode; storage: MemoryStorage; applied: number }

function buildCluster(): Member[] {
  const initial = confState([1, 2, 3]);
  const members = [1, 2, 3].map((id) => {
    const storage = new MemoryStorage();
    storage.bootstrap(initial);
    const node = new RawNode({ id: nodeId(id), group: groupId(0), electionTicks: 10, heartbeatTicks: 1, storage, random: createPrng(id) });
    return { node, storage, applied: 0 };
  });
  drive(members); // applies the bootstrap membership
  members[0].node.campaign();
  drive(members);
  if (members[0].node.status().role !== Role.Leader) throw new Error("bench cluster did not elect node 1");
  return members;
}

/** Process Readies and deliver messages until the cluster is quiet. */
function drive(members: Member[]): void {
  let queue: Message[] = [];
  for (;;) {
    let moved = false;
    for (const member of members) {
      if (!member.node.hasReady()) continue;
      moved = true;
      const ready = member.node.ready();
      for (const message of ready.messages) queue.push(message);
      member.storage.append(ready.entries);
      if (ready.hardState) member.storage.setHardState(ready.hardState);
      for (const message of ready.messagesAfterPersist) queue.push(message);
      member.applied += ready.committedEntries.length;
      for (const entry of ready.committedEntries) {
        if (entry.type === EntryType.ConfChange) member.node.applyConfChange(decodeConfChange(entry.data));
      }
      // Keep the in-memory log short, as a real node compacts after snapshots.
      const applied = member.node.status().applied;
      if (ready.committedEntries.length > 0 && applied > member.storage.firstIndex() + 4096) member.storage.compact(applied - 1024);
      member.node.advance();
    }
    if (queue.length > 0) {
      moved = true;
      const pending = queue;
      queue = [];
      for (const message of pending) members[Number(message.to) - 1].node.step(message);
    }
    if (!moved) return;
  }
}

function runBatches(members: Member[], batch: number, entries: number): void {
  const payload = new Uint8Array(ENTRY_BYTES);
  const leader = members[0].node;
  for (let proposed = 0; proposed < entries; proposed += batch) {
    for (let i = 0; i < batch; i++) {
      const result = leader.propose(payload);
      if (!result.ok) throw new Error(`proposal refused: ${result.reason}`);
    }
    drive(members);
  }
}

function measureThroughput(batch: number, durationMs: number): Row {
  const members = buildCluster();
  runBatches(members, batch, 2000); // warm up the JIT
  const startApplied = members[0].applied;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  let elapsedMs = 0;
  while (elapsedMs < durationMs) {
    runBatches(members, batch, Math.max(batch, 4096));
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const cpu = process.cpuUsage(cpuStart);
  const committed = members[0].applied - startApplied;
  return {
    batch,
    entriesCommitted: committed,
    entriesPerSec: Math.round(committed / (elapsedMs / 1000)),
    cpuMicrosecondsPerEntry: (cpu.user + cpu.system) / committed,
  };
}

/** Runs in a child with a huge young generation: heap growth over the window is what the window allocated. */
function measureAllocationInChild(batch: number): { bytesPerEntry: number; scavenges: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("allocation measurement needs --expose-gc");
  const members = buildCluster();
  runBatches(members, batch, 4096);
  let scavenges = 0;
  const observer = new PerformanceObserver((list) => { scavenges += list.getEntries().length; });
  observer.observe({ entryTypes: ["gc"] });
  const entries = 20_000;
  gc();
  const before = process.memoryUsage().heapUsed;
  runBatches(members, batch, entries);
  const after = process.memoryUsage().heapUsed;
  observer.disconnect();
  return { bytesPerEntry: (after - before) / entries, scavenges };
}

export async function run(context: BenchContext): Promise<void> {
  const durationMs = Number(context.option("duration-ms", "3000"));
  const rows: Row[] = [];
  for (const batch of BATCH_SIZES) {
    const row = measureThroughput(batch, durationMs);
    const child = spawnSync(process.execPath, ["--expose-gc", "--max-semi-space-size=512", fileURLToPath(import.meta.url), "--allocation-child", String(batch)], { encoding: "utf8" });
    if (child.status !== 0) throw new Error(`allocation child failed: ${child.stderr}`);
    const allocation = JSON.parse(child.stdout) as { bytesPerEntry: number; scavenges: number };
    row.heapBytesPerEntry = Math.round(allocation.bytesPerEntry);
    row.gcDuringAllocationWindow = allocation.scavenges;
    rows.push(row);
  }
  const anchor = rows[0].entriesPerSec as number;
  context.note(`3 in-memory nodes, ${ENTRY_BYTES}-byte entries, synchronous delivery; anchor = batch 1 in this run`);
  for (const row of rows) context.report({ ...row, ratioToBatch1: (row.entriesPerSec as number) / anchor });
}

if (process.argv[2] === "--allocation-child") {
  process.stdout.write(JSON.stringify(measureAllocationInChild(Number(process.argv[3]))));
}
