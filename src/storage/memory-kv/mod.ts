export { MemoryKvStore } from "./memory-kv-store.js";
export { memorySnapshotStream, installMemorySnapshot } from "./snapshot.js";
