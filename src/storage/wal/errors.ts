/**
 * One error class per way the WAL can refuse. Every error about a file names
 * the file, and every error about a record names its byte offset, so that an
 * operator can look at the exact bytes (and decide on --wal-repair).
 */

/** A record or header that fails its checks anywhere but the torn tail: the node must not start. */
export class WalCorruptionError extends Error {
  override name = "WalCorruptionError";
  constructor(readonly file: string, readonly offset: number, readonly reason: string, options?: { cause?: unknown }) {
    super(`WAL corruption in ${file} at byte offset ${offset}: ${reason}`, options);
  }
}

/** A segment that is not a Cairn WAL segment at all (wrong magic, too short for a header). */
export class WalNotASegmentError extends Error {
  override name = "WalNotASegmentError";
  constructor(readonly file: string, reason: string) {
    super(`${file} is not a Cairn WAL segment: ${reason}`);
  }
}

/** A segment written by a newer (or unknown) format version. */
export class WalVersionError extends Error {
  override name = "WalVersionError";
  constructor(readonly file: string, readonly version: number, readonly supported: number) {
    super(`${file} has WAL format version ${version}; this build reads version ${supported} only`);
  }
}

/** A segment that belongs to another cluster or another node. */
export class WalIdentityError extends Error {
  override name = "WalIdentityError";
  constructor(
    readonly file: string,
    readonly what: "cluster id" | "node id",
    readonly expected: bigint,
    readonly found: bigint,
  ) {
    super(`${file} belongs to ${what} ${found.toString(16)}, not ${expected.toString(16)}: refusing to open another member's WAL`);
  }
}

/** A gap in the segment sequence: a file in the middle is missing. */
export class WalMissingSegmentError extends Error {
  override name = "WalMissingSegmentError";
  constructor(readonly directory: string, readonly sequence: number) {
    super(`WAL segment ${sequence} is missing from ${directory} (the segments around it exist)`);
  }
}

/** The caller asked for something the log rules forbid (a gap, a term going back): a bug above the WAL. */
export class WalInvalidAppendError extends Error {
  override name = "WalInvalidAppendError";
}

/** A write or fdatasync failed earlier; after that nothing on the disk can be trusted (fsyncgate), so every call fails. */
export class WalFailedError extends Error {
  override name = "WalFailedError";
  constructor(options: { cause: unknown }) {
    super(`the WAL failed earlier and accepts nothing more: ${String((options.cause as Error)?.message ?? options.cause)}`, options);
  }
}

export class WalClosedError extends Error {
  override name = "WalClosedError";
  constructor() {
    super("the WAL is closed");
  }
}

/** Entries asked for below the first index still in the log (compacted into a snapshot). */
export class WalCompactedError extends Error {
  override name = "WalCompactedError";
  constructor(readonly group: number, readonly index: number, readonly firstIndex: number) {
    super(`group ${group}: index ${index} is compacted (the log starts at ${firstIndex})`);
  }
}

/** Entries asked for past the last index of the log. */
export class WalUnavailableError extends Error {
  override name = "WalUnavailableError";
  constructor(readonly group: number, readonly index: number, readonly lastIndex: number) {
    super(`group ${group}: index ${index} is past the end of the log (last index ${lastIndex})`);
  }
}
