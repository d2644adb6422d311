/**
 * Writes and truncations that have happened to a file but are not yet known
 * to be durable, in the order they were made. Both fault-injecting layers keep
 * one of these per file: what sits here is what a power cut loses.
 */
export type PendingOperation =
  | { readonly kind: "write"; readonly position: number; readonly data: Uint8Array }
  | { readonly kind: "truncate"; readonly size: number };

export class PendingWrites {
  private operations: PendingOperation[] = [];

  get length(): number {
    return this.operations.length;
  }

  /** Records a write; copies the bytes, because callers reuse their buffers. */
  write(data: Uint8Array, position: number): void {
    this.operations.push({ kind: "write", position, data: Uint8Array.prototype.slice.call(data) });
  }

  truncate(size: number): void {
    this.operations.push({ kind: "truncate", size });
  }

  /** Removes and returns the oldest `count` operations (default: all of them). */
  take(count = this.operations.length): PendingOperation[] {
    return this.operations.splice(0, count);
  }

  list(): readonly PendingOperation[] {
    return this.operations;
  }

  /** The file size after these operations, starting from `baseSize`. */
  sizeAfter(baseSize: number): number {
    return sizeAfter(this.operations, baseSize);
  }

  /** Overlays these operations on `buffer`, which holds the base file's bytes at [position, position + length). */
  overlay(buffer: Uint8Array, position: number, length: number): void {
    overlay(this.operations, buffer, position, length);
  }
}

export function sizeAfter(operations: readonly PendingOperation[], baseSize: number): number {
  let size = baseSize;
  for (const operation of operations) {
    if (operation.kind === "truncate") size = operation.size;
    else size = Math.max(size, operation.position + operation.data.length);
  }
  return size;
}

export function overlay(operations: readonly PendingOperation[], buffer: Uint8Array, position: number, length: number): void {
  const end = position + length;
  for (const operation of operations) {
    if (operation.kind === "truncate") {
      // Bytes past a truncation read back as zeros if a later write extends the file again.
      if (operation.size < end) buffer.fill(0, Math.max(0, operation.size - position), length);
      continue;
    }
    const from = Math.max(position, operation.position);
    const to = Math.min(end, operation.position + operation.data.length);
    if (from >= to) continue;
    buffer.set(operation.data.subarray(from - operation.position, to - operation.position), from - position);
  }
}
