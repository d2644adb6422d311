/**
 * `cairn snapshot save|status|restore`: backups in Cairn's own checksummed
 * snapshot format (etcd's bbolt file is not what Cairn stores).
 *
 *   cairn [--endpoints a] snapshot save <file>       stream a member's snapshot into <file>
 *   cairn snapshot status <file>                     check every chunk; print revision, index, size
 *   cairn snapshot restore <file> --data-dir D --name N --initial-cluster n1=u1,... \
 *         --initial-advertise-peer-urls U [--initial-cluster-token T]
 *                                                    build a new member's data directory from <file>
 *
 * save writes to <file>.part, checks the stream as it arrives, fsyncs, and
 * renames it into place only when the stream was whole: a <file> that exists
 * is a complete snapshot. A damaged file is reported with its name and the
 * byte offset of the damaged chunk.
 */
import { open, rename, rm } from "node:fs/promises";
import type { Command } from "commander";
import { SnapshotDecoder } from "../kv/mod.js";
import { RestoreError, SnapshotFileError, restoreSnapshot, verifySnapshotFile } from "../server/restore.js";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, outputFormat, processIo, toJson, withClient, type CommandIo, type GlobalFlags } from "./client-commands.js";
import { ConfigError, resolveConfig } from "./config.js";

export function snapshotSave(file: string, flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("snapshot save", flags, io, async (client, format) => {
    const partial = `${file}.part`;
    const handle = await open(partial, "w");
    const decoder = new SnapshotDecoder();
    let bytes = 0;
    let saved = false;
    try {
      for await (const response of client.maintenance.snapshot()) {
        decoder.push(response.blob);
        await handle.write(response.blob);
        bytes += response.blob.length;
      }
      const { header } = decoder.finish();
      await handle.sync();
      await handle.close();
      await rename(partial, file);
      saved = true;
      if (format === "json") io.stdout(toJson({ file, bytes, revision: header.revision, raftIndex: header.appliedIndex, raftTerm: header.term, compactRevision: header.compactRevision }));
      else io.stdout(`Snapshot saved at ${file} (revision ${header.revision}, raft index ${header.appliedIndex}, ${bytes} bytes)\n`);
      return EXIT_OK;
    } finally {
      if (!saved) {
        await handle.close().catch(() => undefined);
        await rm(partial, { force: true });
      }
    }
  });
}

export async function snapshotStatus(file: string, flags: GlobalFlags, io: CommandIo): Promise<number> {
  try {
    const { header, totals, bytes } = await verifySnapshotFile(file);
    if (outputFormat(flags) === "json") {
      io.stdout(toJson({ file, bytes, revision: header.revision, raftIndex: header.appliedIndex, raftTerm: header.term, compactRevision: header.compactRevision, records: totals.records }));
    } else {
      io.stdout(`${file}: intact; revision ${header.revision}, compacted at ${header.compactRevision}, raft index ${header.appliedIndex} (term ${header.term}), ${totals.records} records, ${bytes} bytes\n`);
    }
    return EXIT_OK;
  } catch (error) {
    return reportFileFailure("snapshot status", error, io);
  }
}

export interface RestoreFlags {
  dataDir?: string;
  name?: string;
  initialCluster?: string;
  initialAdvertisePeerUrls?: string;
  initialClusterToken?: string;
}

export async function snapshotRestore(file: string, flags: RestoreFlags, io: CommandIo): Promise<number> {
  try {
    if (flags.dataDir === undefined || flags.dataDir === "") throw new ConfigError("--data-dir is required: the new member's data directory (it must not hold a member yet)");
    // The same validation and URL forms as `cairn start`, so the ids computed here are the ones start would compute.
    const config = resolveConfig({
      flags: {
        "data-dir": flags.dataDir,
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(flags.initialCluster !== undefined ? { "initial-cluster": flags.initialCluster } : {}),
        ...(flags.initialAdvertisePeerUrls !== undefined ? { "initial-advertise-peer-urls": flags.initialAdvertisePeerUrls } : {}),
        ...(flags.initialClusterToken !== undefined ? { "initial-cluster-token": flags.initialClusterToken } : {}),
      },
    });
    const bare = (url: URL) => url.href.replace(/\/$/, "");
    const result = await restoreSnapshot({
      snapshotPath: file,
      dataDir: config.dataDir,
      name: config.name,
      initialCluster: new Map([...config.initialCluster].map(([name, urls]) => [name, urls.map(bare)])),
      initialClusterToken: config.initialClusterToken,
      peerUrls: config.initialAdvertisePeerUrls.map(bare),
    });
    io.stdout(`Restored ${file} (revision ${result.header.revision}, raft index ${result.header.appliedIndex}) into ${config.dataDir}: member ${result.memberId.toString(16)} of new cluster ${result.clusterId.toString(16)}; start it with cairn start and the same --name, --data-dir and --initial-cluster\n`);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`cairn snapshot restore: ${error.message}\n`);
      return EXIT_USAGE;
    }
    return reportFileFailure("snapshot restore", error, io);
  }
}

function reportFileFailure(name: string, error: unknown, io: CommandIo): number {
  if (error instanceof SnapshotFileError || error instanceof RestoreError) {
    io.stderr(`cairn ${name}: ${error.message}\n`);
    return EXIT_FAILED;
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") {
    io.stderr(`cairn ${name}: ${(error as Error).message}\n`);
    return EXIT_FAILED;
  }
  throw error;
}

export function registerSnapshotCommands(program: Command, io: CommandIo = processIo): void {
  const run = (command: Command, action: (flags: GlobalFlags & RestoreFlags) => Promise<number>): Promise<void> =>
    action(command.optsWithGlobals<GlobalFlags & RestoreFlags>()).then((code) => io.setExitCode(code));
  const snapshot = program.command("snapshot").description("save, check and restore snapshots (Cairn's own checksummed format)")
    .configureHelp({ showGlobalOptions: true });
  snapshot.command("save").description("stream a snapshot from a member (the first of --endpoints that answers) into <file>").argument("<file>")
    .action((file: string, _flags: object, command: Command) => run(command, (flags) => snapshotSave(file, flags, io)));
  snapshot.command("status").description("check every chunk of a snapshot file and print what it holds").argument("<file>")
    .action((file: string, _flags: object, command: Command) => run(command, (flags) => snapshotStatus(file, flags, io)));
  snapshot.command("restore").description("build a new member's data directory from a snapshot file; restore every member of the new cluster from the same file")
    .argument("<file>")
    .option("--data-dir <dir>", "the new member's data directory (must not hold a member yet)")
    .option("--name <name>", "the new member's name", "default")
    .option("--initial-cluster <list>", "every member of the new cluster: name=peer-url,...")
    .option("--initial-advertise-peer-urls <urls>", "this member's peer URLs, as in --initial-cluster")
    .option("--initial-cluster-token <token>", "the new cluster's token (different clusters get different ids)")
    .action((file: string, _flags: object, command: Command) => run(command, (flags) => snapshotRestore(file, flags, io)));
}
