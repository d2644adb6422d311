export {
  Wal, stderrLogger,
  type WalOptions, type WalRecord, type WalStats, type WalLogger, type WalFaults, type RecoveryReport, type TailCut,
} from "./wal.js";
export { WalLogStorage, EMPTY_CONF_STATE, type SnapshotDataProvider } from "./wal-log-storage.js";
export type { GroupSummary } from "./group-log.js";
export {
  WalCorruptionError, WalNotASegmentError, WalVersionError, WalIdentityError, WalMissingSegmentError,
  WalInvalidAppendError, WalFailedError, WalClosedError, WalCompactedError, WalUnavailableError,
} from "./errors.js";
export { FORMAT_VERSION, SEGMENT_HEADER_BYTES, RECORD_HEADER_BYTES } from "./record-codec.js";
