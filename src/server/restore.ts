/**
 * `cairn snapshot restore`: builds a new member's data directory from a
 * snapshot file (Cairn's checksummed format, as `cairn snapshot save` and
 * Maintenance.Snapshot produce it), as `etcdutl snapshot restore` does for
 * etcd: the keys and their history come from the file, while the cluster id
 * and member ids are new, computed from --initial-cluster and the token, so
 * the restored members form a new cluster that cannot be confused with the
 * old one. Every member of the new cluster is restored from the same file.
 *
 * The member directory is built beside its final place and renamed into it
 * last, so a restore that fails half-way never leaves something `cairn
 * start` would take for a member.
 */
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SnapshotCorruptError, SnapshotDecoder, SnapshotFormatError, type SnapshotHeader, type SnapshotTotals } from "../kv/mod.js";
import { groupId, type ClusterId, type NodeId } from "../lib/ids.js";
import { confState as makeConfState } from "../raft/mod.js";
import { NodeFileSystem } from "../storage/fs/mod.js";
import { LmdbKvStore } from "../storage/lmdb/mod.js";
import { Wal } from "../storage/wal/mod.js";
import { KvStateMachine } from "./kv-state-machine.js";
import { computeClusterId } from "./membership.js";
import { foundingMembers, writeIdentity } from "./node.js";

const GROUP_ZERO = groupId(0);
/** Bytes read from the snapshot file at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** A snapshot file that is damaged, truncated or not a Cairn snapshot; names the file and the byte offset. */
export class SnapshotFileError extends Error {
  override name = "SnapshotFileError";
  constructor(readonly path: string, readonly offset: number, reason: string, options?: ErrorOptions) {
    super(`${path}: damaged snapshot at byte offset ${offset}: ${reason}`, options);
  }
}

/** The restore cannot be done as asked (a flag is wrong, the directory is in use); nothing was written. */
export class RestoreError extends Error {
  override name = "RestoreError";
}

async function* readFile(path: string): AsyncGenerator<Uint8Array> {
  for await (const piece of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES })) yield piece as Buffer;
}

/** Checks every chunk of a snapshot file (checksums, order, totals) without writing anything. */
export async function verifySnapshotFile(path: string): Promise<{ header: SnapshotHeader; totals: SnapshotTotals; bytes: number }> {
  const decoder = new SnapshotDecoder();
  let bytes = 0;
  try {
    for await (const piece of readFile(path)) {
      decoder.push(piece);
      bytes += piece.length;
    }
    return { ...decoder.finish(), bytes };
  } catch (error) {
    if (error instanceof SnapshotCorruptError || error instanceof SnapshotFormatError) {
      throw new SnapshotFileError(path, decoder.chunkOffset, error.message, { cause: error });
    }
    throw error;
  }
}

export interface RestoreOptions {
  readonly snapshotPath: string;
  readonly dataDir: string;
  readonly name: string;
  /** name → peer URLs of every member of the new cluster. */
  readonly initialCluster: ReadonlyMap<string, readonly string[]>;
  readonly initialClusterToken: string;
  /** This member's advertised peer URLs: must be its entry in initialCluster. */
  readonly peerUrls: readonly string[];
}

export interface RestoreResult {
  readonly clusterId: ClusterId;
  readonly memberId: NodeId;
  readonly header: SnapshotHeader;
}

export async function restoreSnapshot(options: RestoreOptions): Promise<RestoreResult> {
  const memberDirectory = join(options.dataDir, "member");
  if (existsSync(memberDirectory)) throw new RestoreError(`${memberDirectory} already exists: restore into a new, empty data directory`);
  const members = foundingMembers(options);
  const self = members.find((member) => member.name === options.name);
  if (!self) throw new RestoreError(`--name ${options.name} is not in --initial-cluster (${[...options.initialCluster.keys()].join(", ")})`);
  const ownUrls = [...options.peerUrls].sort().join(",");
  if ([...self.peerUrls].sort().join(",") !== ownUrls) {
    throw new RestoreError(`--initial-advertise-peer-urls ${options.peerUrls.join(",")} differ from ${options.name}'s entry in --initial-cluster (${self.peerUrls.join(",")})`);
  }
  const { header } = await verifySnapshotFile(options.snapshotPath);
  if (header.appliedIndex < 1) throw new SnapshotFileError(options.snapshotPath, 0, "the snapshot holds no applied state (index 0)");

  const clusterId = computeClusterId(members.map((member) => member.id));
  const building = `${memberDirectory}.restoring`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  try {
    const store = LmdbKvStore.open(join(building, "kv"));
    const confState = makeConfState(members.map((member) => member.id));
    let position;
    try {
      await store.installSnapshot(readFile(options.snapshotPath));
      const machine = new KvStateMachine(store);
      machine.replaceMembership(members, confState);
      position = machine.applied();
    } finally {
      await store.close();
    }
    // The log starts right after the image: a snapshot marker with the new membership, committed.
    const wal = await Wal.open({ fileSystem: new NodeFileSystem(), directory: join(building, "wal"), clusterId, nodeId: self.id });
    try {
      await wal.append([
        { type: "snapshot", group: GROUP_ZERO, metadata: { index: position.index, term: position.term, confState } },
        { type: "hardState", group: GROUP_ZERO, hardState: { term: position.term, vote: 0n as NodeId, commit: position.index } },
      ]);
    } finally {
      await wal.close();
    }
    writeIdentity(join(building, "identity.json"), { clusterId, memberId: self.id }, options.name);
    renameSync(building, memberDirectory);
    await new NodeFileSystem().syncDirectory(options.dataDir);
  } catch (error) {
    rmSync(building, { recursive: true, force: true });
    throw error;
  }
  return { clusterId, memberId: self.id, header };
}
