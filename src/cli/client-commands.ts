/**
 * Client commands (kv, lease, member, status): thin wrappers over src/client.
 *
 *   cairn [--endpoints a,b] [-w table|json] [--command-timeout 5s] kv get <key> [--prefix] [--limit n] [--rev n] [--keys-only]
 *   cairn kv put <key> <value>
 *   cairn kv del <key> [--prefix]
 *   cairn kv watch <key> [--prefix] [--rev n] [--prev-kv]   (until interrupted)
 *   cairn lease grant <ttl seconds> | revoke <hex id> | keep-alive <hex id> [--once] | timetolive <hex id> [--keys] | list
 *   cairn member list | add <name> --peer-urls u1,u2 [--learner] | remove <hex id> | promote <hex id>
 *   cairn status
 *
 * Global flags may come before or after the command. Endpoints come from
 * --endpoints, else CAIRN_ENDPOINTS, else 127.0.0.1:2379.
 *
 * Exit codes: 0 done; 1 the cluster refused or could not be reached;
 * 2 bad usage; 3 a write whose outcome is unknown (it may or may not have
 * been applied: read it back before trying again).
 *
 * Each command is an exported function returning its exit code, so tests
 * drive them with captured output.
 */
import { readFileSync } from "node:fs";
import { Option, type Command, type CommanderError } from "commander";
import {
  Client, EtcdClientError, EventType, GrpcStatus, WatchCanceledError, WatchCompactedError, IndeterminateError, InvalidEndpointError, InvalidRequestError, LeaseExpiredError, parseEndpoints,
  type ClientOptions, type KeyValue, type Member, type ResponseHeader, type StatusResponse, type TlsOptions,
} from "../client/mod.js";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INDETERMINATE = 3;

export const DEFAULT_ENDPOINTS = "127.0.0.1:2379";
export const ENDPOINTS_ENVIRONMENT_VARIABLE = "CAIRN_ENDPOINTS";
/** etcdctl's default --command-timeout. */
export const COMMAND_TIMEOUT_DEFAULT = "5s";
/** Longest --command-timeout accepted (a day): beyond that it is a typo. */
const COMMAND_TIMEOUT_MS_MAX = 86_400_000;
const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Where a command writes, and what it reads from the environment. */
export interface CommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly environment: Readonly<Record<string, string | undefined>>;
  /** Ends the process after commander's own usage errors and help (tests throw instead). */
  readonly exit: (code: number) => never;
  /** Records a command's exit code. */
  readonly setExitCode: (code: number) => void;
}

export const processIo: CommandIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  environment: process.env,
  exit: (code) => process.exit(code),
  setExitCode: (code) => void (process.exitCode = code),
};

/** Flags every client command takes (commander's camelCase names). */
export interface GlobalFlags {
  endpoints?: string;
  writeOut?: string;
  commandTimeout?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  insecureSkipTlsVerify?: boolean;
}

export type OutputFormat = "table" | "json";

/** A flag or argument the command cannot use; reported with exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

// ------------------------------------------------------------------ flag parsing

/** "5s", "500ms", "2m", "1h", or a bare number of milliseconds. */
export function parseDurationMs(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${flag}: expected a duration such as 5s or 500ms, got ${JSON.stringify(text)}`);
  const milliseconds = Number(match[1]) * DURATION_UNITS_MS[match[2] ?? "ms"];
  if (milliseconds <= 0 || milliseconds > COMMAND_TIMEOUT_MS_MAX) throw new UsageError(`${flag}: must be above 0 and at most 24h, got ${JSON.stringify(text)}`);
  return milliseconds;
}

export function parseCount(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) throw new UsageError(`${flag}: expected a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** A member id as etcdctl prints it: hexadecimal, optionally 0x-prefixed, 1 to 16 digits, not zero. */
export function parseMemberId(text: string): bigint {
  const match = /^(?:0x)?([0-9a-f]{1,16})$/i.exec(text.trim());
  if (!match) throw new UsageError(`member id: expected a hexadecimal id such as 8e9e05c52164694d, got ${JSON.stringify(text)}`);
  const id = BigInt(`0x${match[1]}`);
  if (id === 0n) throw new UsageError("member id: 0 is not a member id");
  return id;
}

/** A lease id in hex, as etcdctl prints it; ids are signed 64-bit on the wire. */
export function parseLeaseId(text: string): bigint {
  const match = /^(?:0x)?([0-9a-f]{1,16})$/i.exec(text.trim());
  if (!match) throw new UsageError(`lease id: expected a hexadecimal id such as 694d7a5c6b2d8a0b, got ${JSON.stringify(text)}`);
  const id = BigInt.asIntN(64, BigInt(`0x${match[1]}`));
  if (id === 0n) throw new UsageError("lease id: 0 means no lease");
  return id;
}

const leaseHex = (id: bigint): string => BigInt.asUintN(64, id).toString(16);

export function outputFormat(flags: GlobalFlags): OutputFormat {
  const format = flags.writeOut ?? "table";
  if (format !== "table" && format !== "json") throw new UsageError(`--write-out: expected table or json, got ${JSON.stringify(format)}`);
  return format;
}

function tlsOptions(flags: GlobalFlags): TlsOptions | undefined {
  if (flags.cacert === undefined && flags.cert === undefined && flags.key === undefined && !flags.insecureSkipTlsVerify) return undefined;
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new UsageError("--cert and --key go together");
  const read = (file: string, flag: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new UsageError(`${flag}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  return {
    ca: flags.cacert === undefined ? undefined : read(flags.cacert, "--cacert"),
    cert: flags.cert === undefined ? undefined : read(flags.cert, "--cert"),
    key: flags.key === undefined ? undefined : read(flags.key, "--key"),
    rejectUnauthorized: !flags.insecureSkipTlsVerify,
  };
}

export function clientOptions(flags: GlobalFlags, environment: CommandIo["environment"]): ClientOptions {
  const endpoints = flags.endpoints ?? environment[ENDPOINTS_ENVIRONMENT_VARIABLE] ?? DEFAULT_ENDPOINTS;
  try {
    parseEndpoints(endpoints);
  } catch (error) {
    if (error instanceof InvalidEndpointError) throw new UsageError(`--endpoints: ${error.message}`);
    throw error;
  }
  return { endpoints, commandTimeoutMs: parseDurationMs(flags.commandTimeout ?? COMMAND_TIMEOUT_DEFAULT, "--command-timeout"), tls: tlsOptions(flags) };
}

// ------------------------------------------------------------------ output

/** Bytes as text when they are printable UTF-8, else with \xNN escapes for the bytes that are not. */
export function printable(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString("utf8");
  // eslint-disable-next-line no-control-regex
  if (!text.includes("\uFFFD") && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) return text;
  let out = "";
  for (const byte of bytes) out += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
  return out;
}

/** A bordered table, as etcdctl draws them; cells are single-line. */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const flat = (cell: string): string => cell.replace(/\r?\n/g, "\\n");
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => flat(row[column] ?? "").length)));
  const line = `+${widths.map((width) => "-".repeat(width + 2)).join("+")}+\n`;
  const format = (cells: readonly string[]): string => `|${cells.map((cell, column) => ` ${flat(cell).padEnd(widths[column])} `).join("|")}|\n`;
  return line + format(headers) + line + rows.map(format).join("") + line;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

const hex = (id: bigint): string => id.toString(16);

/** JSON with bigints written as exact integers (as etcdctl writes uint64 ids) and bytes as base64. */
export function toJson(value: unknown): string {
  const marker = "\u0000bigint:";
  const text = JSON.stringify(value, function (this: Record<string, unknown>, key: string, item: unknown) {
    // The holder's own value: a Buffer's toJSON has already turned `item` into { type, data }.
    const original = this[key];
    if (typeof original === "bigint") return `${marker}${original.toString()}`;
    if (original instanceof Uint8Array) return Buffer.from(original).toString("base64");
    return item;
  }, 2);
  // JSON.stringify escapes the NUL as the six characters \u0000, which no other string in this output starts with.
  return text.replace(/"\\u0000bigint:(\d+)"/g, "$1") + "\n";
}

function jsonHeader(header: ResponseHeader | undefined): Record<string, unknown> | undefined {
  if (header === undefined) return undefined;
  return { cluster_id: header.clusterId, member_id: header.memberId, revision: header.revision, raft_term: header.raftTerm };
}

function jsonKeyValue(kv: KeyValue): Record<string, unknown> {
  return { key: kv.key, value: kv.value, create_revision: kv.createRevision, mod_revision: kv.modRevision, version: kv.version, lease: kv.lease };
}

function jsonMember(member: Member): Record<string, unknown> {
  return { ID: member.ID, name: member.name, peerURLs: member.peerURLs, clientURLs: member.clientURLs, isLearner: member.isLearner };
}

// ------------------------------------------------------------------ running a command

/** Runs `body` with a client, turning every failure into a clear message and its exit code. */
export async function withClient(name: string, flags: GlobalFlags, io: CommandIo, body: (client: Client, format: OutputFormat) => Promise<number>): Promise<number> {
  let client: Client | undefined;
  try {
    const format = outputFormat(flags);
    client = new Client(clientOptions(flags, io.environment));
    return await body(client, format);
  } catch (error) {
    return reportFailure(name, error, io);
  } finally {
    await client?.close();
  }
}

function reportFailure(name: string, error: unknown, io: CommandIo): number {
  if (error instanceof UsageError || error instanceof InvalidRequestError) {
    io.stderr(`cairn ${name}: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (error instanceof IndeterminateError) {
    io.stderr(`cairn ${name}: OUTCOME UNKNOWN: the write may or may not have been applied.\n  ${error.message}\n  Read the key back before trying again.\n`);
    return EXIT_INDETERMINATE;
  }
  if (error instanceof WatchCompactedError || error instanceof WatchCanceledError) {
    io.stderr(`cairn ${name}: ${error.message}\n`);
    return EXIT_FAILED;
  }
  if (error instanceof EtcdClientError) {
    const where = error.endpoint === undefined ? "" : ` (from ${error.endpoint})`;
    const hint = error.code === GrpcStatus.unavailable && error.kind === undefined ? "\n  Is the cluster running? Check --endpoints or CAIRN_ENDPOINTS." : "";
    io.stderr(`cairn ${name}: ${error.details}${where}${hint}\n`);
    return EXIT_FAILED;
  }
  io.stderr(`cairn ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT_FAILED;
}

// ------------------------------------------------------------------ kv

export interface KvGetFlags {
  prefix?: boolean;
  limit?: string;
  rev?: string;
  keysOnly?: boolean;
}

export function kvGet(key: string, flags: KvGetFlags & GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("kv get", flags, io, async (client, format) => {
    const limit = parseCount(flags.limit, "--limit");
    const revision = parseCount(flags.rev, "--rev");
    const response = await client.kv.get(key, { prefix: flags.prefix ?? false, limit, revision, keysOnly: flags.keysOnly ?? false });
    if (format === "json") {
      io.stdout(toJson({ header: jsonHeader(response.header), kvs: response.kvs.map(jsonKeyValue), more: response.more, count: response.count }));
      return EXIT_OK;
    }
    if (response.kvs.length === 0) {
      io.stderr(`no keys match ${JSON.stringify(key)}${flags.prefix ? " as a prefix" : ""}\n`);
      return EXIT_OK;
    }
    const headers = flags.keysOnly ? ["KEY", "VERSION", "MOD REVISION"] : ["KEY", "VALUE", "VERSION", "MOD REVISION"];
    const rows = response.kvs.map((kv) => {
      const tail = [String(kv.version), String(kv.modRevision)];
      return flags.keysOnly ? [printable(kv.key), ...tail] : [printable(kv.key), printable(kv.value), ...tail];
    });
    io.stdout(renderTable(headers, rows));
    if (response.more) io.stdout(`${response.kvs.length} of ${response.count} keys shown (--limit)\n`);
    return EXIT_OK;
  });
}

export function kvPut(key: string, value: string, flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("kv put", flags, io, async (client, format) => {
    const response = await client.kv.put(key, value);
    io.stdout(format === "json" ? toJson({ header: jsonHeader(response.header) }) : `OK (revision ${response.header?.revision ?? "?"})\n`);
    return EXIT_OK;
  });
}

export function kvDel(key: string, flags: { prefix?: boolean } & GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("kv del", flags, io, async (client, format) => {
    const response = await client.kv.delete(key, { prefix: flags.prefix ?? false });
    io.stdout(format === "json" ? toJson({ header: jsonHeader(response.header), deleted: response.deleted }) : `${response.deleted}\n`);
    return EXIT_OK;
  });
}

export interface KvWatchFlags {
  prefix?: boolean;
  rev?: string;
  prevKv?: boolean;
}

/**
 * Prints every change to a key (or prefix) until `signal` aborts (Ctrl-C
 * ends the process): one line per event, or one JSON object per update
 * with -w json. A broken connection resumes on another endpoint from the
 * last revision printed, so nothing is printed twice or skipped.
 */
export function kvWatch(key: string, flags: KvWatchFlags & GlobalFlags, io: CommandIo, signal?: AbortSignal): Promise<number> {
  return withClient("kv watch", flags, io, async (client, format) => {
    const startRevision = parseCount(flags.rev, "--rev");
    const updates = client.watch.watch(key, { prefix: flags.prefix ?? false, startRevision, prevKv: flags.prevKv ?? false, signal });
    for await (const update of updates) {
      if (format === "json") {
        io.stdout(toJson({
          revision: update.revision,
          events: update.events.map((event) => ({
            type: event.type === EventType.delete ? "DELETE" : "PUT",
            kv: event.kv === undefined ? null : jsonKeyValue(event.kv),
            prev_kv: event.prevKv === undefined ? null : jsonKeyValue(event.prevKv),
          })),
        }).replace(/\n(?!$)\s*/g, ""));
        continue;
      }
      for (const event of update.events) {
        const kv = event.kv;
        if (kv === undefined) continue;
        const line = event.type === EventType.delete
          ? `DELETE ${printable(kv.key)} (revision ${kv.modRevision})`
          : `PUT ${printable(kv.key)} ${printable(kv.value)} (revision ${kv.modRevision}, version ${kv.version})`;
        io.stdout(`${line}\n`);
        if (event.prevKv !== undefined) io.stdout(`  previous: ${printable(event.prevKv.value)} (revision ${event.prevKv.modRevision})\n`);
      }
    }
    return EXIT_OK;
  });
}

// ------------------------------------------------------------------ lease

export function leaseGrant(ttl: string, flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("lease grant", flags, io, async (client, format) => {
    const seconds = Number(ttl);
    if (!/^\d+$/.test(ttl) || !Number.isSafeInteger(seconds) || seconds <= 0) throw new UsageError(`TTL: expected a positive whole number of seconds, got ${JSON.stringify(ttl)}`);
    const response = await client.lease.grant(seconds);
    io.stdout(format === "json"
      ? toJson({ header: jsonHeader(response.header), id: leaseHex(response.ID), ttl: response.TTL })
      : `lease ${leaseHex(response.ID)} granted with TTL(${response.TTL}s)\n`);
    return EXIT_OK;
  });
}

export function leaseRevoke(id: string, flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("lease revoke", flags, io, async (client, format) => {
    const lease = parseLeaseId(id);
    const response = await client.lease.revoke(lease);
    io.stdout(format === "json" ? toJson({ header: jsonHeader(response.header), id: leaseHex(lease) }) : `lease ${leaseHex(lease)} revoked\n`);
    return EXIT_OK;
  });
}

export function leaseList(flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("lease list", flags, io, async (client, format) => {
    const response = await client.lease.leases();
    const ids = response.leases.map((lease) => leaseHex(lease.ID));
    io.stdout(format === "json" ? toJson({ header: jsonHeader(response.header), leases: ids }) : `found ${ids.length} leases\n${ids.map((id) => `${id}\n`).join("")}`);
    return EXIT_OK;
  });
}

export function leaseTimeToLive(id: string, flags: { keys?: boolean } & GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("lease timetolive", flags, io, async (client, format) => {
    const lease = parseLeaseId(id);
    const response = await client.lease.timeToLive(lease, { keys: flags.keys ?? false });
    const keys = response.keys.map(printable);
    if (format === "json") io.stdout(toJson({ header: jsonHeader(response.header), id: leaseHex(lease), ttl: response.TTL, grantedTtl: response.grantedTTL, keys }));
    else if (response.TTL === -1) io.stdout(`lease ${leaseHex(lease)} already expired\n`);
    else io.stdout(`lease ${leaseHex(lease)} granted with TTL(${response.grantedTTL}s), remaining(${response.TTL}s)${flags.keys ? `, attached keys(${JSON.stringify(keys)})` : ""}\n`);
    return EXIT_OK;
  });
}

/** Renews the lease every third of its TTL until interrupted (SIGINT/SIGTERM), or once with --once. */
export function leaseKeepAlive(id: string, flags: { once?: boolean } & GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("lease keep-alive", flags, io, async (client) => {
    const lease = parseLeaseId(id);
    const report = (ttl: number) => io.stdout(`lease ${leaseHex(lease)} keepalived with TTL(${ttl})\n`);
    if (flags.once) {
      report(await client.lease.keepAliveOnce(lease));
      return EXIT_OK;
    }
    const stop = new AbortController();
    const interrupted = () => stop.abort();
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
    try {
      const first = await client.lease.timeToLive(lease);
      if (first.TTL === -1) throw new LeaseExpiredError(lease);
      await client.lease.keepAlive(lease, first.grantedTTL, { signal: stop.signal, onRenewed: report });
      return EXIT_OK;
    } finally {
      process.off("SIGINT", interrupted);
      process.off("SIGTERM", interrupted);
    }
  });
}

// ------------------------------------------------------------------ member

function memberRows(members: readonly Member[]): string[][] {
  return members.map((member) => [
    hex(member.ID), member.name === "" ? "unstarted" : "started", member.name, member.peerURLs.join(","), member.clientURLs.join(","), String(member.isLearner),
  ]);
}

const MEMBER_HEADERS = ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"];

export function memberList(flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("member list", flags, io, async (client, format) => {
    const response = await client.cluster.memberList({ linearizable: true });
    if (format === "json") io.stdout(toJson({ header: jsonHeader(response.header), members: response.members.map(jsonMember) }));
    else io.stdout(renderTable(MEMBER_HEADERS, memberRows(response.members)));
    return EXIT_OK;
  });
}

export function memberAdd(name: string, flags: { peerUrls?: string; learner?: boolean } & GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("member add", flags, io, async (client, format) => {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new UsageError(`member name: letters, digits, '.', '_' and '-' only (1 to 64), got ${JSON.stringify(name)}`);
    const peerUrls = (flags.peerUrls ?? "").split(",").map((url) => url.trim()).filter((url) => url !== "");
    if (peerUrls.length === 0) throw new UsageError("--peer-urls: at least one peer URL is required, e.g. --peer-urls http://10.0.0.4:2380");
    const response = await client.cluster.memberAdd(peerUrls, { isLearner: flags.learner ?? false });
    const added = response.member;
    if (format === "json") {
      io.stdout(toJson({ header: jsonHeader(response.header), member: added && jsonMember(added), members: response.members.map(jsonMember) }));
      return EXIT_OK;
    }
    const clusterId = response.header?.clusterId ?? 0n;
    io.stdout(`Member ${hex(added?.ID ?? 0n)} added to cluster ${hex(clusterId)}${flags.learner ? " as a learner" : ""}\n\n`);
    const initialCluster = response.members.flatMap((member) => {
      const memberName = member.ID === added?.ID ? name : member.name;
      return member.peerURLs.map((url) => `${memberName}=${url}`);
    }).join(",");
    io.stdout(`Start it with:\n  cairn start --name ${name} --initial-cluster ${initialCluster} --initial-cluster-state existing --initial-advertise-peer-urls ${peerUrls.join(",")}\n`);
    return EXIT_OK;
  });
}

export function memberRemove(id: string, flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("member remove", flags, io, async (client, format) => {
    const memberId = parseMemberId(id);
    const response = await client.cluster.memberRemove(memberId);
    if (format === "json") io.stdout(toJson({ header: jsonHeader(response.header), members: response.members.map(jsonMember) }));
    else io.stdout(`Member ${hex(memberId)} removed from cluster ${hex(response.header?.clusterId ?? 0n)}\n`);
    return EXIT_OK;
  });
}

export function memberPromote(id: string, flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("member promote", flags, io, async (client, format) => {
    const memberId = parseMemberId(id);
    const response = await client.cluster.memberPromote(memberId);
    if (format === "json") io.stdout(toJson({ header: jsonHeader(response.header), members: response.members.map(jsonMember) }));
    else io.stdout(`Member ${hex(memberId)} promoted in cluster ${hex(response.header?.clusterId ?? 0n)}\n`);
    return EXIT_OK;
  });
}

// ------------------------------------------------------------------ status

const STATUS_HEADERS = ["ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER", "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS"];

function statusRow(endpoint: string, status: StatusResponse): string[] {
  const id = status.header?.memberId ?? 0n;
  return [
    endpoint, hex(id), status.version, formatBytes(status.dbSize), String(id !== 0n && id === status.leader), String(status.isLearner),
    String(status.raftTerm), String(status.raftIndex), String(status.raftAppliedIndex), status.errors.join(", "),
  ];
}

function failureText(error: unknown): string {
  if (error instanceof EtcdClientError) return error.details;
  return error instanceof Error ? error.message : String(error);
}

/** One row per endpoint; exits 1 when any endpoint did not answer (the others are still shown). */
export function status(flags: GlobalFlags, io: CommandIo): Promise<number> {
  return withClient("status", flags, io, async (client, format) => {
    const results = await client.maintenance.statusOfEndpoints();
    if (format === "json") {
      io.stdout(toJson(results.map((result) => result.status !== undefined
        ? {
          endpoint: result.endpoint,
          status: {
            header: jsonHeader(result.status.header), version: result.status.version, dbSize: result.status.dbSize, dbSizeInUse: result.status.dbSizeInUse,
            leader: result.status.leader, raftIndex: result.status.raftIndex, raftTerm: result.status.raftTerm,
            raftAppliedIndex: result.status.raftAppliedIndex, errors: result.status.errors, isLearner: result.status.isLearner,
          },
        }
        : { endpoint: result.endpoint, error: failureText(result.error) })));
    } else {
      io.stdout(renderTable(STATUS_HEADERS, results.map((result) => result.status !== undefined
        ? statusRow(result.endpoint, result.status)
        : [result.endpoint, "-", "-", "-", "-", "-", "-", "-", "-", `unreachable: ${failureText(result.error)}`])));
    }
    const failed = results.filter((result) => result.error !== undefined);
    for (const result of failed) io.stderr(`cairn status: ${result.endpoint}: ${failureText(result.error)}\n`);
    return failed.length === 0 ? EXIT_OK : EXIT_FAILED;
  });
}

// ------------------------------------------------------------------ registration

/**
 * Adds kv, member and status to `program`, and the global client flags to
 * the program itself (so they may come before or after the command).
 */
export function registerClientCommands(program: Command, io: CommandIo = processIo): void {
  program
    .addOption(new Option("--endpoints <list>", `client endpoints, comma-separated (env ${ENDPOINTS_ENVIRONMENT_VARIABLE}; default ${DEFAULT_ENDPOINTS})`))
    .addOption(new Option("-w, --write-out <format>", "output format: table (default) or json"))
    .addOption(new Option("--command-timeout <duration>", `deadline of each command, retries included (default ${COMMAND_TIMEOUT_DEFAULT})`))
    .addOption(new Option("--cacert <file>", "CA bundle that signs the servers' certificates (https endpoints)"))
    .addOption(new Option("--cert <file>", "client certificate, for servers that require one"))
    .addOption(new Option("--key <file>", "the client certificate's key"))
    .addOption(new Option("--insecure-skip-tls-verify", "accept any server certificate (testing only)"));

  const usageExit = (error: CommanderError): never => io.exit(error.exitCode === 0 ? EXIT_OK : EXIT_USAGE);
  // optsWithGlobals: the command's own flags and the program's global ones together.
  const run = (command: Command, action: (flags: GlobalFlags) => Promise<number>): Promise<void> =>
    action(command.optsWithGlobals<GlobalFlags>()).then((code) => io.setExitCode(code));

  const kv = program.command("kv").description("read and write keys").exitOverride(usageExit).configureHelp({ showGlobalOptions: true });
  kv.command("get").description("get a key, or every key with a prefix").argument("<key>")
    .option("--prefix", "every key starting with <key>")
    .option("--limit <count>", "most keys to return")
    .option("--rev <revision>", "read at this revision")
    .option("--keys-only", "keys without values")
    .exitOverride(usageExit)
    .action((key: string, _flags: KvGetFlags, command: Command) => run(command, (flags) => kvGet(key, flags, io)));
  kv.command("put").description("set a key's value (use -- before a value that starts with '-')").argument("<key>").argument("<value>")
    .exitOverride(usageExit)
    .action((key: string, value: string, _flags: object, command: Command) => run(command, (flags) => kvPut(key, value, flags, io)));
  kv.command("del").description("delete a key, or every key with a prefix").argument("<key>")
    .option("--prefix", "every key starting with <key>")
    .exitOverride(usageExit)
    .action((key: string, _flags: object, command: Command) => run(command, (flags) => kvDel(key, flags, io)));
  kv.command("watch").description("print every change to a key, or to every key with a prefix, until interrupted").argument("<key>")
    .option("--prefix", "every key starting with <key>")
    .option("--rev <revision>", "start at this revision (replays history from it)")
    .option("--prev-kv", "also print each key's previous value")
    .exitOverride(usageExit)
    .action((key: string, _flags: KvWatchFlags, command: Command) => run(command, (flags) => kvWatch(key, flags, io)));

  const member = program.command("member").description("list and change the cluster's members").exitOverride(usageExit).configureHelp({ showGlobalOptions: true });
  member.command("list").description("list the members").exitOverride(usageExit)
    .action((_flags: object, command: Command) => run(command, (flags) => memberList(flags, io)));
  member.command("add").description("add a member (then start it with the printed command)").argument("<name>")
    .requiredOption("--peer-urls <urls>", "the new member's peer URLs, comma-separated")
    .option("--learner", "add it as a learner (a non-voting member that catches up first)")
    .exitOverride(usageExit)
    .action((name: string, _flags: object, command: Command) => run(command, (flags) => memberAdd(name, flags, io)));
  member.command("remove").description("remove a member").argument("<id>", "member id in hex, as member list prints it").exitOverride(usageExit)
    .action((id: string, _flags: object, command: Command) => run(command, (flags) => memberRemove(id, flags, io)));
  member.command("promote").description("promote a learner to a voting member").argument("<id>", "member id in hex").exitOverride(usageExit)
    .action((id: string, _flags: object, command: Command) => run(command, (flags) => memberPromote(id, flags, io)));

  const lease = program.command("lease").description("grant, revoke, keep alive and list leases").exitOverride(usageExit).configureHelp({ showGlobalOptions: true });
  lease.command("grant").description("grant a lease").argument("<ttl>", "seconds").exitOverride(usageExit)
    .action((ttl: string, _flags: object, command: Command) => run(command, (flags) => leaseGrant(ttl, flags, io)));
  lease.command("revoke").description("revoke a lease, deleting its keys").argument("<id>", "lease id in hex").exitOverride(usageExit)
    .action((id: string, _flags: object, command: Command) => run(command, (flags) => leaseRevoke(id, flags, io)));
  lease.command("keep-alive").description("keep a lease alive until interrupted").argument("<id>", "lease id in hex")
    .option("--once", "renew once and exit").exitOverride(usageExit)
    .action((id: string, _flags: object, command: Command) => run(command, (flags) => leaseKeepAlive(id, flags, io)));
  lease.command("timetolive").description("remaining and granted TTL of a lease").argument("<id>", "lease id in hex")
    .option("--keys", "also list the attached keys").exitOverride(usageExit)
    .action((id: string, _flags: object, command: Command) => run(command, (flags) => leaseTimeToLive(id, flags, io)));
  lease.command("list").description("list the leases").exitOverride(usageExit)
    .action((_flags: object, command: Command) => run(command, (flags) => leaseList(flags, io)));

  program.command("status").description("status of every endpoint: id, version, db size, leader, learner, raft term and indexes, errors")
    .exitOverride(usageExit)
    .configureHelp({ showGlobalOptions: true })
    .action((_flags: object, command: Command) => run(command, (flags) => status(flags, io)));
}
