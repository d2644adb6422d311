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
  /** Operations ever removed from the front: operation number n (counting from 0) sits at n - removed. */
  private removed = 0;

  get length(): number {
    return this.operations.length;
  }

  /**
   * Operations ever recorded. A sync notes this when it is called and later
   * takes exactly the operations numbered below it (takeBefore), so what it
   * makes durable does not depend on other syncs finishing before it or on
   * writes made after it was called.
   */
  get recorded(): number {
    return this.removed + this.operations.length;
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
    const taken = this.operations.splice(0, count);
    this.removed += taken.length;
    return taken;
  }

  /** Removes and returns the operations numbered below `recorded` (a value of `recorded` noted earlier) still here. */
  takeBefore(recorded: number): PendingOperation[] {
    return this.take(Math.max(0, recorded - this.removed));
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
