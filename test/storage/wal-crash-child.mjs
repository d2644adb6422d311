// Child process of wal-crash.test.ts: appends to a WAL on the power-cut file
// layer forever, printing one line per acknowledged append, until it is
// killed. Plain JavaScript because Node 20 cannot run TypeScript: it loads the
// WAL from a directory of transpiled modules named on the command line.
//
// usage: node wal-crash-child.mjs <module root> <wal directory> <round> <seed> <fault|none>
import { Buffer } from "node:buffer";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

const [root, directory, roundText, seedText, fault] = process.argv.slice(2);
const round = Number(roundText);
const { Wal } = await import(pathToFileURL(join(root, "src/storage/wal/mod.js")).href);
const { PowerCutFileSystem, NodeFileSystem } = await import(pathToFileURL(join(root, "src/storage/fs/mod.js")).href);
const { createPrng } = await import(pathToFileURL(join(root, "src/lib/prng.js")).href);

const GROUPS = 4;
// How far back the log is compacted, and how long it may grow before that.
const COMPACT_KEEP = 30;
const COMPACT_ABOVE = 60;
const prng = createPrng(Number(seedText));

const wal = await Wal.open({
  fileSystem: new PowerCutFileSystem(new NodeFileSystem(), { syncDelayMs: 2 }),
  directory,
  clusterId: 0xc0ffeen,
  nodeId: 0x5eedn,
  segmentBytes: 16384,
  faults: fault === "ack-before-sync" ? { acknowledgeBeforeSync: true } : {},
});
process.stdout.write("ready\n");

/** The entry's content names everything a checker needs to know whether it belongs where it was found. */
function entryText(group, index, round, lastOfAppend) {
  return `g=${group} i=${index} r=${round} last=${lastOfAppend} `.padEnd(24 + ((index * 37) % 160), "x");
}

async function appendForever(group) {
  // Each round rewrites the last two entries in its own term: a conflicting suffix, as after a leader change.
  let first = Math.max(wal.firstIndex(group), wal.lastIndex(group) - 1);
  for (;;) {
    const last = first + prng.int(3);
    const entries = [];
    for (let index = first; index <= last; index++) {
      entries.push({ index, term: round, type: 0, data: Buffer.from(entryText(group, index, round, last)) });
    }
    const records = [
      { type: "entries", group, entries },
      { type: "hardState", group, hardState: { term: round, vote: BigInt(group), commit: first - 1 } },
    ];
    if (last - wal.firstIndex(group) > COMPACT_ABOVE && prng.chance(0.25)) {
      const index = last - COMPACT_KEEP;
      records.push({ type: "snapshot", group, metadata: { index, term: wal.term(group, index), confState: { voters: [1n], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false } } });
    }
    await wal.append(records);
    process.stdout.write(`ack ${group} ${first} ${last}\n`);
    first = last + 1;
  }
}

for (let group = 0; group < GROUPS; group++) {
  appendForever(group).catch((error) => {
    process.stderr.write(`appender ${group} failed: ${error?.stack ?? error}\n`);
    process.exit(3);
  });
}
