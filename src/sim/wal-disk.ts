/**
 * One simulated node's durable storage in the simulator's WAL mode: the
 * production Wal on a crashable in-memory disk (MemoryFileSystem behind the
 * simulated-time queue of SimFileSystem), read by the Raft core through
 * WalLogStorage. Snapshot images live beside it in the simulator's own state
 * store, as they would in LMDB: the WAL keeps only their markers.
 *
 * Every append is also written down in a DurabilityLedger, so that each
 * restart can check recovery against what was acknowledged.
 */
import { assert } from "../lib/assert.js";
import { clusterId, type GroupId, type LogIndex, type NodeId } from "../lib/ids.js";
import type { Prng } from "../lib/prng.js";
import type { ConfState, SnapshotMetadata } from "../raft/types.js";
import { MemoryFileSystem } from "../storage/fs/memory-file-system.js";
import { WalLogStorage } from "../storage/wal/wal-log-storage.js";
import { SEGMENT_HEADER_BYTES } from "../storage/wal/record-codec.js";
import { Wal, type TailCut, type WalFaults, type WalRecord } from "../storage/wal/wal.js";
import { DurabilityLedger, DurableLogState } from "./durable-log-model.js";
import { SimFileSystem, type DiskClock } from "./sim-file-system.js";

const SIM_CLUSTER = clusterId(0x51_4d_c1_05);
const WAL_DIRECTORY = "/data/wal";

/** The core asked for the image of a snapshot the state store does not hold. */
export class MissingSnapshotImageError extends Error {
  override name = "MissingSnapshotImageError";
  constructor(readonly index: LogIndex) {
    super(`no snapshot image at index ${index} in the state store`);
  }
}

export interface WalDiskOptions {
  readonly nodeId: NodeId;
  readonly group: GroupId;
  /** The membership every member's log builds on, written as the marker at index 0 on first start. */
  readonly genesis: ConfState;
  readonly clock: DiskClock;
  readonly segmentBytes: number;
  readonly faults: WalFaults;
}

export interface OpenReport {
  /** What recovery cut off the end of the WAL (a torn write), if anything. */
  readonly tornTail: TailCut | null;
  /** Null when recovery found every acknowledged record; else what was lost or invented. */
  readonly durabilityProblem: string | null;
}

export interface CrashReport {
  /** Appends under way when the crash hit: it fell in the middle of a batch. */
  readonly appendsInFlight: number;
  /** Disk operations (writes, syncs) issued and not completed. */
  readonly diskOperationsInFlight: number;
}

export class WalDisk {
  private disk = new MemoryFileSystem();
  private fileSystem: SimFileSystem | null = null;
  private wal: Wal | null = null;
  private logStorage: WalLogStorage | null = null;
  /** The state store's snapshot images by index (durable at once, like the applied state). */
  private readonly images = new Map<LogIndex, Uint8Array>();
  private readonly ledger = new DurabilityLedger();
  private appendsInFlight = 0;

  constructor(private readonly options: WalDiskOptions) {}

  get storage(): WalLogStorage {
    assert(this.logStorage !== null, "WAL storage read while the node is down");
    return this.logStorage;
  }

  get open(): boolean {
    return this.wal !== null;
  }

  /** Opens the WAL (recovering it), checks it against the ledger, and writes the genesis marker on first start. */
  async start(): Promise<OpenReport> {
    assert(this.wal === null, "WAL opened twice");
    const fileSystem = new SimFileSystem(this.disk, this.options.clock);
    this.fileSystem = fileSystem;
    const wal = await Wal.open({
      fileSystem,
      directory: WAL_DIRECTORY,
      clusterId: SIM_CLUSTER,
      nodeId: this.options.nodeId,
      segmentBytes: this.options.segmentBytes,
      faults: this.options.faults,
    });
    const group = this.options.group;
    const recovered = DurableLogState.read(wal, group);
    const durabilityProblem = this.ledger.recover(recovered);
    // The caller decides whether a problem ends the run; the node can go on from what recovery found either way.
    if (durabilityProblem !== null) this.ledger.adopt(recovered);
    this.wal = wal;
    this.logStorage = new WalLogStorage(wal, group, (metadata) => this.image(metadata.index));
    if (wal.snapshotMetadata(group) === null && wal.hardState(group) === null && wal.lastIndex(group) === 0) {
      await this.append([{ type: "snapshot", group, metadata: { index: 0, term: 0, confState: this.options.genesis } }]);
    }
    return { tornTail: wal.recovery.tornTail, durabilityProblem };
  }

  /** One append() of the WAL; resolves once durable. Throws WalInvalidAppendError at once for records breaking the log rules. */
  append(records: readonly WalRecord[]): Promise<void> {
    const wal = this.wal;
    assert(wal !== null, "append to a WAL that is not open");
    const durable = wal.append(records);
    this.ledger.appended(records);
    this.appendsInFlight++;
    return durable.then(() => {
      this.appendsInFlight--;
      this.ledger.acknowledge(records);
    });
  }

  /** The snapshot marker the WAL holds (no image lookup, unlike storage.snapshot()). */
  marker(): SnapshotMetadata | null {
    assert(this.wal !== null, "marker read while the node is down");
    return this.wal.snapshotMetadata(this.options.group);
  }

  /** Stores a snapshot image in the state store; its marker is appended to the WAL afterwards. */
  storeImage(index: LogIndex, data: Uint8Array): void {
    this.images.set(index, data);
  }

  image(index: LogIndex): Uint8Array {
    const data = this.images.get(index);
    if (data === undefined) throw new MissingSnapshotImageError(index);
    return data;
  }

  /** Images older than a durable marker can never be asked for again. */
  dropImagesBelow(index: LogIndex): void {
    for (const held of this.images.keys()) if (held < index) this.images.delete(held);
  }

  /**
   * Damage on the disk (a planted fault of the simulator): flips one bit of a
   * random non-zero byte past the header of a random WAL segment, durably.
   * Returns where, or null when there is nothing to damage.
   */
  flipBit(random: Prng): string | null {
    const segments = this.disk.listFiles().filter((path) => path.startsWith(`${WAL_DIRECTORY}/`) && path.endsWith(".wal"));
    if (segments.length === 0) return null;
    const path = random.pick(segments);
    const bytes = this.disk.readFile(path);
    const candidates: number[] = [];
    for (let offset = SEGMENT_HEADER_BYTES; offset < bytes.length; offset++) if (bytes[offset] !== 0) candidates.push(offset);
    if (candidates.length === 0) return null;
    const offset = random.pick(candidates);
    const bit = random.int(8);
    bytes[offset] ^= 1 << bit;
    this.disk.writeFile(path, bytes);
    return `${path}:${offset} bit ${bit}`;
  }

  /** A power cut: unsynced writes are lost but for a random prefix (the last write possibly torn); the process and its WAL die. */
  crash(random: Prng): CrashReport {
    const report: CrashReport = { appendsInFlight: this.appendsInFlight, diskOperationsInFlight: this.fileSystem?.operationsInFlight ?? 0 };
    this.fileSystem?.kill();
    this.fileSystem = null;
    // powerCut, not crash: the dead instance must refuse whatever the dead process's leftover code still tries.
    this.disk = this.disk.powerCut(random);
    this.wal = null;
    this.logStorage = null;
    this.appendsInFlight = 0;
    return report;
  }
}
