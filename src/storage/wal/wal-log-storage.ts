/**
 * The Raft core's LogStorage for one group, read from the node-wide WAL. The
 * core reads it synchronously; the runtime writes through Wal.append() (for
 * all of the node's groups at once) before it calls advance().
 *
 * The WAL keeps only a snapshot's marker (index, term, membership); the
 * snapshot's data lives in the state store, so snapshot() asks a provider for
 * it.
 */
import { NO_NODE, type GroupId, type Term } from "../../lib/ids.js";
import type { ConfState, Entry, HardState, LogStorage, Snapshot, SnapshotMetadata } from "../../raft/types.js";
import type { Wal } from "./wal.js";

export const EMPTY_CONF_STATE: ConfState = { voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
const EMPTY_HARD_STATE: HardState = { term: 0, vote: NO_NODE, commit: 0 };
const EMPTY_SNAPSHOT_METADATA: SnapshotMetadata = { index: 0, term: 0, confState: EMPTY_CONF_STATE };

/** Produces the state machine image for a snapshot marker (from the state store). */
export type SnapshotDataProvider = (metadata: SnapshotMetadata) => Uint8Array;

export class WalLogStorage implements LogStorage {
  constructor(
    private readonly wal: Wal,
    readonly group: GroupId,
    private readonly snapshotData: SnapshotDataProvider,
  ) {}

  initialState(): { hardState: HardState; confState: ConfState } {
    return {
      hardState: this.wal.hardState(this.group) ?? EMPTY_HARD_STATE,
      confState: this.wal.snapshotMetadata(this.group)?.confState ?? EMPTY_CONF_STATE,
    };
  }

  entries(low: number, high: number, bytesMax: number): Entry[] {
    return this.wal.entries(this.group, low, high, bytesMax);
  }

  term(index: number): Term {
    return this.wal.term(this.group, index);
  }

  firstIndex(): number {
    return this.wal.firstIndex(this.group);
  }

  lastIndex(): number {
    return this.wal.lastIndex(this.group);
  }

  snapshot(): Snapshot {
    const metadata = this.wal.snapshotMetadata(this.group) ?? EMPTY_SNAPSHOT_METADATA;
    return { metadata, data: metadata.index === 0 ? new Uint8Array(0) : this.snapshotData(metadata) };
  }
}
