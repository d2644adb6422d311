/**
 * A node's configuration from etcd-named flags, a YAML file (`--config`) and
 * CAIRN_* environment variables, validated with messages that name the bad
 * field. Precedence, lowest first: defaults, file, environment, flags.
 *
 * The YAML file takes etcd's config-file keys (flat `listen-client-urls:`
 * strings, and the nested `client-transport-security:` and
 * `peer-transport-security:` sections), so an etcd config works unchanged.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { limits } from "../lib/limits.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
}

export interface NodeConfig {
  name: string;
  dataDir: string;
  listenClientUrls: URL[];
  advertiseClientUrls: URL[];
  listenPeerUrls: URL[];
  initialAdvertisePeerUrls: URL[];
  /** name → peer URLs */
  initialCluster: Map<string, URL[]>;
  initialClusterState: "new" | "existing";
  initialClusterToken: string;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  snapshotCount: number;
  /** Applied bytes of entries that also trigger a log compaction (Cairn's own; etcd counts entries only). */
  snapshotBytes: number;
  quotaBackendBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  /** Bytes a single Range response may hold before it is refused. */
  maxResponseBytes: number;
  autoCompactionMode: "periodic" | "revision";
  /** periodic: milliseconds of history to keep; revision: revisions to keep; 0 = off. */
  autoCompactionRetention: number;
  listenMetricsUrls: URL[];
  /** How often an idle progress_notify watch hears the current revision. */
  watchProgressNotifyIntervalMs: number;
  /** Events one watcher may hold in memory before it catches up from storage. */
  watchBufferedEventsMax: number;
  /** How often the leader records remaining lease TTLs through Raft (etcd's lease checkpointing). */
  leaseCheckpointIntervalMs: number;
  clientTls: TlsFiles;
  peerTls: TlsFiles;
  forceNewCluster: boolean;
  walRepair: boolean;
  logLevel: "debug" | "info" | "warn" | "error";
}

/** Every option: its flag name (etcd's), its kind, and its default. */
export const OPTIONS = {
  "name": { kind: "string", default: "default", help: "human-readable name of this member" },
  "data-dir": { kind: "string", default: "", help: "path to the data directory (default: ./<name>.cairn)" },
  "listen-client-urls": { kind: "urls", default: "http://127.0.0.1:2379", help: "URLs to listen on for client traffic" },
  "advertise-client-urls": { kind: "urls", default: "", help: "client URLs advertised to the cluster (default: listen-client-urls)" },
  "listen-peer-urls": { kind: "urls", default: "http://127.0.0.1:2380", help: "URLs to listen on for peer traffic" },
  "initial-advertise-peer-urls": { kind: "urls", default: "", help: "peer URLs advertised to the cluster (default: listen-peer-urls)" },
  "initial-cluster": { kind: "string", default: "", help: "initial cluster configuration: name=url,name=url" },
  "initial-cluster-state": { kind: "string", default: "new", help: "new | existing" },
  "initial-cluster-token": { kind: "string", default: "cairn-cluster", help: "initial cluster token: different clusters get different ids" },
  "heartbeat-interval": { kind: "integer", default: "100", help: "time (ms) of a heartbeat interval" },
  "election-timeout": { kind: "integer", default: "1000", help: "time (ms) for an election to time out" },
  "snapshot-count": { kind: "integer", default: "100000", help: "committed entries that trigger a snapshot and log compaction" },
  "snapshot-bytes": { kind: "integer", default: String(64 * 1024 * 1024), help: "applied bytes of entries that also trigger a snapshot and log compaction" },
  "quota-backend-bytes": { kind: "integer", default: String(2 * 1024 ** 3), help: "raise the NOSPACE alarm when the store exceeds this size" },
  "max-request-bytes": { kind: "integer", default: String(limits.requestBytesMax), help: "largest client request the server accepts" },
  "max-txn-ops": { kind: "integer", default: String(limits.txnOpsMax), help: "most operations in one Txn" },
  "experimental-lease-checkpoint-interval": { kind: "string", default: "5m", help: "how often the leader records remaining lease TTLs through Raft (e.g. 5m, 30s)" },
  "max-response-bytes": { kind: "integer", default: String(64 * 1024 * 1024), help: "largest Range response; larger ones are refused" },
  "auto-compaction-mode": { kind: "string", default: "periodic", help: "periodic | revision" },
  "auto-compaction-retention": { kind: "string", default: "0", help: "periodic: a duration (1h, 30m, or hours as a number); revision: revisions to keep; 0 disables" },
  "listen-metrics-urls": { kind: "urls", default: "", help: "URLs serving /metrics and /health" },
  "experimental-watch-progress-notify-interval": { kind: "string", default: "10m", help: "how often an idle watch with progress_notify hears the current revision (e.g. 10m, 5s, 500ms)" },
  "watch-buffered-events-max": { kind: "integer", default: String(limits.watchBufferedEventsMax), help: "events one watcher may hold in memory; a slower watcher catches up from storage" },
  "cert-file": { kind: "string", default: "", help: "client server TLS certificate" },
  "key-file": { kind: "string", default: "", help: "client server TLS key" },
  "trusted-ca-file": { kind: "string", default: "", help: "CA for client certificates" },
  "client-cert-auth": { kind: "boolean", default: "false", help: "require client certificates signed by trusted-ca-file" },
  "peer-cert-file": { kind: "string", default: "", help: "peer TLS certificate" },
  "peer-key-file": { kind: "string", default: "", help: "peer TLS key" },
  "peer-trusted-ca-file": { kind: "string", default: "", help: "CA for peer certificates" },
  "peer-client-cert-auth": { kind: "boolean", default: "false", help: "require peer certificates signed by peer-trusted-ca-file" },
  "force-new-cluster": { kind: "boolean", default: "false", help: "restart a lone survivor as a one-member cluster after losing quorum" },
  "wal-repair": { kind: "boolean", default: "false", help: "cut the WAL at the first damaged record instead of refusing to start (prints what is lost)" },
  "log-level": { kind: "string", default: "info", help: "debug | info | warn | error" },
} as const satisfies Record<string, { kind: "string" | "urls" | "integer" | "boolean"; default: string; help: string }>;

export type OptionName = keyof typeof OPTIONS;
export type RawOptions = Partial<Record<OptionName, string | boolean | number>>;

const TLS_SECTIONS: Record<string, Record<string, OptionName>> = {
  "client-transport-security": { "cert-file": "cert-file", "key-file": "key-file", "trusted-ca-file": "trusted-ca-file", "client-cert-auth": "client-cert-auth" },
  "peer-transport-security": { "cert-file": "peer-cert-file", "key-file": "peer-key-file", "trusted-ca-file": "peer-trusted-ca-file", "client-cert-auth": "peer-client-cert-auth" },
};

/** Reads an etcd-style YAML config file into raw options. */
export function readConfigFile(path: string): RawOptions {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(error as Error).message}`, { cause: error });
  }
  if (document === null || document === undefined) return {};
  if (typeof document !== "object" || Array.isArray(document)) throw new ConfigError(`config file ${path}: expected a mapping of option names to values`);
  const raw: RawOptions = {};
  for (const [key, value] of Object.entries(document as Record<string, unknown>)) {
    const section = TLS_SECTIONS[key];
    if (section) {
      if (typeof value !== "object" || value === null) throw new ConfigError(`config file ${path}: ${key} must be a mapping`);
      for (const [innerKey, innerValue] of Object.entries(value as Record<string, unknown>)) {
        const option = section[innerKey];
        if (!option) throw new ConfigError(`config file ${path}: unknown option ${key}.${innerKey}`);
        raw[option] = scalar(path, `${key}.${innerKey}`, innerValue);
      }
      continue;
    }
    if (!(key in OPTIONS)) throw new ConfigError(`config file ${path}: unknown option "${key}"`);
    raw[key as OptionName] = scalar(path, key, value);
  }
  return raw;
}

function scalar(path: string, key: string, value: unknown): string | number | boolean {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) return value.join(",");
  throw new ConfigError(`config file ${path}: ${key} must be a string, number or boolean`);
}

/** CAIRN_LISTEN_CLIENT_URLS → listen-client-urls, for every known option. */
export function readEnvironment(environment: NodeJS.ProcessEnv): RawOptions {
  const raw: RawOptions = {};
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const value = environment[`CAIRN_${name.toUpperCase().replaceAll("-", "_")}`];
    if (value !== undefined && value !== "") raw[name] = value;
  }
  return raw;
}

function parseUrls(field: string, text: string): URL[] {
  if (text.trim() === "") return [];
  return text.split(",").map((part) => {
    let url: URL;
    try {
      url = new URL(part.trim());
    } catch {
      throw new ConfigError(`--${field}: "${part.trim()}" is not a URL (expected e.g. http://127.0.0.1:2379)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConfigError(`--${field}: ${url.href} must use http:// (plaintext) or https:// (TLS)`);
    if (url.port === "") throw new ConfigError(`--${field}: ${url.href} needs an explicit port`);
    return url;
  });
}

function parseInteger(field: string, value: string | number | boolean, minimum: number): number {
  const number = typeof value === "number" ? value : Number(String(value).trim());
  if (!Number.isSafeInteger(number)) throw new ConfigError(`--${field}: "${String(value)}" is not an integer`);
  if (number < minimum) throw new ConfigError(`--${field}: ${number} is below the minimum ${minimum}`);
  return number;
}

function parseBoolean(field: string, value: string | number | boolean): boolean {
  if (typeof value === "boolean") return value;
  const text = String(value).trim().toLowerCase();
  if (text === "true" || text === "1" || text === "") return true;
  if (text === "false" || text === "0") return false;
  throw new ConfigError(`--${field}: "${String(value)}" is not true or false`);
}

/** "10m", "5s", "500ms", "1h": a duration with its unit, in milliseconds. */
function parseDurationMs(field: string, text: string, minimumMs: number): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!match) throw new ConfigError(`--${field}: "${text}" is not a duration (e.g. 10m, 5s, 500ms)`);
  const valueMs = Math.round(Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"]);
  if (valueMs < minimumMs) throw new ConfigError(`--${field}: ${text} is below the minimum of ${minimumMs} ms`);
  return valueMs;
}

/** "1h", "30m", "90s" or a bare number of hours (etcd's periodic retention). */
function parseRetention(mode: "periodic" | "revision", text: string): number {
  const trimmed = text.trim();
  if (mode === "revision") return parseInteger("auto-compaction-retention", trimmed, 0);
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(trimmed);
  if (!match) throw new ConfigError(`--auto-compaction-retention: "${text}" is not a duration (e.g. 1h, 30m, 90s)`);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "h"] ?? 3_600_000;
  return Math.round(Number(match[1]) * unitMs);
}

export function parseInitialCluster(text: string): Map<string, URL[]> {
  const cluster = new Map<string, URL[]>();
  if (text.trim() === "") return cluster;
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at <= 0) throw new ConfigError(`--initial-cluster: "${part}" is not name=url`);
    const name = part.slice(0, at).trim();
    const urls = parseUrls("initial-cluster", part.slice(at + 1));
    cluster.set(name, [...(cluster.get(name) ?? []), ...urls]);
  }
  return cluster;
}

function oneOf<T extends string>(field: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new ConfigError(`--${field}: "${value}" must be one of ${allowed.join(", ")}`);
  return value as T;
}

/** Merges defaults < file < environment < flags and validates the result. */
export function resolveConfig(layers: { file?: RawOptions; environment?: RawOptions; flags?: RawOptions }): NodeConfig {
  const merged: Record<string, string | number | boolean> = {};
  for (const [name, option] of Object.entries(OPTIONS)) merged[name] = option.default;
  for (const layer of [layers.file, layers.environment, layers.flags]) {
    for (const [name, value] of Object.entries(layer ?? {})) if (value !== undefined) merged[name] = value;
  }
  const text = (name: OptionName) => String(merged[name]);
  const name = text("name").trim();
  if (name === "" || /[\s=,]/.test(name)) throw new ConfigError(`--name: "${name}" must be non-empty without spaces, "=" or ","`);

  const listenClientUrls = parseUrls("listen-client-urls", text("listen-client-urls"));
  if (listenClientUrls.length === 0) throw new ConfigError("--listen-client-urls: at least one URL is required");
  const listenPeerUrls = parseUrls("listen-peer-urls", text("listen-peer-urls"));
  if (listenPeerUrls.length === 0) throw new ConfigError("--listen-peer-urls: at least one URL is required");
  const advertiseClientUrls = parseUrls("advertise-client-urls", text("advertise-client-urls"));
  const initialAdvertisePeerUrls = parseUrls("initial-advertise-peer-urls", text("initial-advertise-peer-urls"));
  const peerUrls = initialAdvertisePeerUrls.length > 0 ? initialAdvertisePeerUrls : listenPeerUrls;

  const initialClusterState = oneOf("initial-cluster-state", text("initial-cluster-state"), ["new", "existing"] as const);
  let initialCluster = parseInitialCluster(text("initial-cluster"));
  if (initialCluster.size === 0) initialCluster = new Map([[name, peerUrls]]);
  if (!initialCluster.has(name)) {
    throw new ConfigError(`--initial-cluster: this member's name "${name}" is not in it (${[...initialCluster.keys()].join(", ")})`);
  }
  const ownUrls = new Set(initialCluster.get(name)!.map((url) => url.href));
  if (!peerUrls.some((url) => ownUrls.has(url.href))) {
    throw new ConfigError(`--initial-cluster: ${name}'s URLs there (${[...ownUrls].join(", ")}) do not match --initial-advertise-peer-urls (${peerUrls.map((url) => url.href).join(", ")})`);
  }

  const heartbeatIntervalMs = parseInteger("heartbeat-interval", merged["heartbeat-interval"], 1);
  const electionTimeoutMs = parseInteger("election-timeout", merged["election-timeout"], 1);
  if (electionTimeoutMs < 5 * heartbeatIntervalMs) {
    throw new ConfigError(`--election-timeout: ${electionTimeoutMs} ms must be at least 5 times --heartbeat-interval (${heartbeatIntervalMs} ms)`);
  }
  const autoCompactionMode = oneOf("auto-compaction-mode", text("auto-compaction-mode"), ["periodic", "revision"] as const);
  const tls = (prefix: "" | "peer-"): TlsFiles => {
    const files = {
      certFile: text(`${prefix}cert-file` as OptionName),
      keyFile: text(`${prefix}key-file` as OptionName),
      trustedCaFile: text(`${prefix}trusted-ca-file` as OptionName),
      clientCertAuth: parseBoolean(`${prefix}client-cert-auth`, merged[`${prefix}client-cert-auth`]),
    };
    if ((files.certFile === "") !== (files.keyFile === "")) throw new ConfigError(`--${prefix}cert-file and --${prefix}key-file must be given together`);
    if (files.clientCertAuth && files.trustedCaFile === "") throw new ConfigError(`--${prefix}client-cert-auth needs --${prefix}trusted-ca-file`);
    return files;
  };
  const clientTls = tls("");
  const peerTls = tls("peer-");
  const needsTls = (urls: URL[]) => urls.some((url) => url.protocol === "https:");
  if (needsTls(listenClientUrls) && clientTls.certFile === "") throw new ConfigError("--listen-client-urls: an https:// URL needs --cert-file and --key-file");
  if (needsTls(listenPeerUrls) && peerTls.certFile === "") throw new ConfigError("--listen-peer-urls: an https:// URL needs --peer-cert-file and --peer-key-file");

  return {
    name,
    dataDir: text("data-dir") === "" ? `${name}.cairn` : text("data-dir"),
    listenClientUrls,
    advertiseClientUrls: advertiseClientUrls.length > 0 ? advertiseClientUrls : listenClientUrls,
    listenPeerUrls,
    initialAdvertisePeerUrls: peerUrls,
    initialCluster,
    initialClusterState,
    initialClusterToken: text("initial-cluster-token"),
    heartbeatIntervalMs,
    electionTimeoutMs,
    snapshotCount: parseInteger("snapshot-count", merged["snapshot-count"], 1),
    snapshotBytes: parseInteger("snapshot-bytes", merged["snapshot-bytes"], 1024),
    quotaBackendBytes: parseInteger("quota-backend-bytes", merged["quota-backend-bytes"], 0),
    maxRequestBytes: parseInteger("max-request-bytes", merged["max-request-bytes"], 1024),
    maxTxnOps: parseInteger("max-txn-ops", merged["max-txn-ops"], 1),
    maxResponseBytes: parseInteger("max-response-bytes", merged["max-response-bytes"], 1024),
    autoCompactionMode,
    autoCompactionRetention: parseRetention(autoCompactionMode, text("auto-compaction-retention")),
    listenMetricsUrls: parseUrls("listen-metrics-urls", text("listen-metrics-urls")),
    watchProgressNotifyIntervalMs: parseDurationMs("experimental-watch-progress-notify-interval", text("experimental-watch-progress-notify-interval"), 10),
    watchBufferedEventsMax: parseInteger("watch-buffered-events-max", merged["watch-buffered-events-max"], 1),
    leaseCheckpointIntervalMs: parseDurationMs("experimental-lease-checkpoint-interval", text("experimental-lease-checkpoint-interval"), 100),
    clientTls,
    peerTls,
    forceNewCluster: parseBoolean("force-new-cluster", merged["force-new-cluster"]),
    walRepair: parseBoolean("wal-repair", merged["wal-repair"]),
    logLevel: oneOf("log-level", text("log-level"), ["debug", "info", "warn", "error"] as const),
  };
}
