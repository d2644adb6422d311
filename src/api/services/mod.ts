/** etcd's KV, Cluster and Maintenance services on the backends the node runtime implements (../backend.ts). */
export {
  KvService, RangeResponseTooLargeError, RANGE_RESPONSE_BYTES_MAX_DEFAULT, KEY_VALUE_FRAMING_BYTES_MAX, RANGE_CHUNK_KVS_MAX,
  RANGE_CHUNK_BYTES_MAX, STALE_READ_RETRIES_MAX, type KvServiceOptions,
} from "./kv-service.js";
export { LeaseService, generateLeaseId } from "./lease-service.js";
export { ClusterService, checkPeerUrls, PEER_URLS_MAX } from "./cluster-service.js";
export { MaintenanceService, alarmText, SNAPSHOT_MESSAGE_BYTES_MAX } from "./maintenance-service.js";
export { headerOf } from "./common.js";
export {
  WatchService, INVALID_WATCH_ID, PROGRESS_NOTIFY_INTERVAL_MS_DEFAULT, WATCHES_PER_STREAM_MAX_DEFAULT, type WatchBackend,
  type WatchServiceOptions,
} from "./watch-service.js";
