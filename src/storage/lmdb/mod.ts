export { LmdbKvStore, LmdbFormatError, SimulatedCrash, LMDB_MAP_BYTES, type InstallStep, type LmdbSyncMode, type LmdbKvStoreOptions } from "./lmdb-kv-store.js";
export { DurableAppliedIndex, snapshotStream, type Flushable } from "./durable-applied.js";
