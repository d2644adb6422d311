/**
 * What the node runtime needs from a group's state machine. The runtime
 * drives it without knowing what is inside (key-value store, queue, ...).
 */
import type { LogIndex, Term } from "../lib/ids.js";
import type { ConfChange, ConfState } from "../raft/types.js";

/** The durable position of a state machine: the last entry applied, and the membership as of it. */
export interface AppliedPosition {
  readonly index: LogIndex;
  readonly term: Term;
  readonly confState: ConfState;
}

export type AppliedEntry =
  | { readonly kind: "noop"; readonly index: LogIndex; readonly term: Term }
  | { readonly kind: "command"; readonly index: LogIndex; readonly term: Term; readonly command: Uint8Array }
  | {
    readonly kind: "conf-change"; readonly index: LogIndex; readonly term: Term;
    readonly change: ConfChange; readonly confState: ConfState;
  };

export interface GroupStateMachine {
  /** Where the state machine stands (durably, or about to be: see durableIndex). */
  applied(): AppliedPosition;
  /**
   * Applies committed entries in order, in one transaction that also records
   * the applied position. Entries at or below applied().index are skipped (a
   * snapshot may have carried the state machine past them). Returns one
   * result per entry, in order (undefined where there is nothing to return).
   */
  apply(entries: readonly AppliedEntry[]): unknown[];
  /** Resolves with the highest applied index that is durable on disk (the log may be compacted up to it). */
  durableIndex(): Promise<LogIndex>;
  /**
   * A consistent image of the current state, in checksummed chunks, and the
   * position it stands at (captured at the call, from the same read
   * transaction as the chunks). A follower is sent this position, not the
   * log's older compaction point, so the membership it learns includes itself
   * (etcd does the same when it merges the store into a snapshot message).
   */
  snapshot(): { position: AppliedPosition; chunks: AsyncIterable<Uint8Array> };
  /**
   * Replaces the state with an image from the leader, atomically and durably.
   * Returns false (and changes nothing) when the image is not newer than the
   * current state.
   */
  installSnapshot(chunks: AsyncIterable<Uint8Array>): Promise<boolean>;
}
