export { LmdbKvStore, LmdbFormatError, DefragmentError, type DefragmentResult, SimulatedCrash, LMDB_MAP_BYTES, type InstallStep, type LmdbSyncMode, type LmdbKvStoreOptions } from "./lmdb-kv-store.js";
export { DurableAppliedIndex, snapshotStream, streamSnapshotSource, type Flushable } from "./durable-applied.js";
