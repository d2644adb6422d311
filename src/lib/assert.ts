/**
 * Invariant checks that stay on in production (TigerBeetle's habit): an
 * invariant that fails means the process can no longer trust its own state,
 * so it throws an AssertionError that nothing should catch and carry on from.
 */
export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(condition: unknown, message?: string | (() => string)): asserts condition {
  if (!condition) {
    const text = typeof message === "function" ? message() : message;
    throw new AssertionError(text ?? "assertion failed");
  }
}

/** Marks a branch that the type system says cannot be reached. */
export function unreachable(value: never, what = "value"): never {
  throw new AssertionError(`unreachable ${what}: ${String(value)}`);
}
