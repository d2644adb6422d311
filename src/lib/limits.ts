/**
 * Every limit in one place (STYLE habit 6): nothing in Cairn grows without a
 * bound, and the bounds are named here so they can be read and tuned together.
 */
export const limits = {
  /** Largest payload of a single Raft entry the core accepts from propose(). */
  raftEntryBytesMax: 8 * 1024 * 1024,
  /** Bytes of entries in one append message to a follower (flow control). */
  raftMessageBytesMax: 1024 * 1024,
  /** Append messages in flight to one follower before the leader waits (flow control). */
  raftInflightMessagesMax: 256,
  /** Bytes of proposed but not yet committed entries a leader accepts before refusing proposals. */
  raftUncommittedBytesMax: 64 * 1024 * 1024,
  /** Pending ReadIndex requests on one node. */
  raftPendingReadsMax: 4096,
  /** Messages buffered inside the core between ready() calls. */
  raftBufferedMessagesMax: 65536,
  /** WAL segment size before rotation. */
  walSegmentBytes: 64 * 1024 * 1024,
  /** Largest single WAL record. */
  walRecordBytesMax: 64 * 1024 * 1024,
  /** Bytes of recent entries a WAL keeps in memory per node for reads. */
  walCacheBytesMax: 64 * 1024 * 1024,
  /** Largest peer frame. */
  frameBytesMax: 16 * 1024 * 1024,
  /** Client request size (etcd's --max-request-bytes default is 1.5 MiB). */
  requestBytesMax: 1.5 * 1024 * 1024,
  /** Operations in one Txn (etcd's --max-txn-ops default). */
  txnOpsMax: 128,
  /**
   * Key and value bytes (plus framing) that the ranges of one Txn may
   * answer. Checked in the state machine before the Txn runs, so it must be
   * the same on every member: a constant, not a flag. etcd has no such bound
   * and builds any Txn answer whole, on every member.
   */
  txnRangeResponseBytesMax: 64 * 1024 * 1024,
  /** Messages queued to one peer before new ones are dropped. */
  peerQueueMessagesMax: 4096,
  /** Bytes queued to one peer before new messages are dropped. */
  peerQueueBytesMax: 64 * 1024 * 1024,
  /** Events one watcher may hold in memory before it catches up from storage instead (--watch-buffered-events-max). */
  watchBufferedEventsMax: 4096,
} as const;
