export * from "./command.js";
export * from "./errors.js";
export * from "./types.js";
export { LEASE_TTL_SECONDS_MAX, leaseMetaKey, type LeaseInfo, type LeaseRecord } from "./lease.js";
export { Mvcc, RangeStream, type MvccOptions } from "./mvcc.js";
export type { RangeSummary } from "./range.js";
export { validateCommand, KEY_INDEX_KEY_BYTES_MAX } from "./validate.js";
export {
  KvTable, KV_TABLES, KV_FORMAT_VERSION, MetaKey, checkFormatVersion, encodeMetaNumber, decodeMetaNumber,
  type KvStore, type KvReader, type KvWriter, type KvEntry, type KvRangeOptions,
} from "./store.js";
export {
  SnapshotSource, SnapshotDecoder, SnapshotInstaller, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_CHUNK_BYTES_TARGET,
  SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX, type SnapshotHeader, type SnapshotTotals, type SnapshotChunk, type SnapshotRecord,
} from "./snapshot.js";
export {
  WatchHub, Watcher, EmptyWatcherRangeError, keyInRange, WATCH_DELIVERY_EVENTS_MAX_DEFAULT, WATCH_HISTORY_RECORDS_MAX_DEFAULT,
  WATCH_BUFFERED_BYTES_MAX_DEFAULT, WATCH_DELIVERY_BYTES_MAX_DEFAULT,
  type WatchHubOptions, type WatchSpec, type WatchDelivery, type WatchableMvcc,
} from "./watch-hub.js";
export { readHistory, eventBytes, type RevisionEvents, type HistoryBudget } from "./history.js";
