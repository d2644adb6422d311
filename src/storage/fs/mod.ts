export { FileNotFoundError, StaleFileHandleError, type FileHandle, type FileSystem, type OpenOptions } from "./file-system.js";
export { NodeFileSystem } from "./node-file-system.js";
export { PowerCutFileSystem, type PowerCutOptions } from "./power-cut-file-system.js";
export { MemoryFileSystem, type MemoryFileSystemOptions, type MemoryFileSystemLatency } from "./memory-file-system.js";
