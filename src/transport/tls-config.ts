/**
 * TLS for peer connections, configured with etcd's peer flags:
 * --peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
 * --peer-client-cert-auth. As in etcd, one certificate serves both
 * directions: a node presents it as a server to peers that dial it and as a
 * client when it dials them.
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions, TlsOptions } from "node:tls";
import { TransportConfigError } from "./errors.js";

export interface PeerTlsConfig {
  /** PEM certificate (chain) this node presents; required to listen on https://. */
  readonly certFile?: string;
  /** PEM private key of that certificate. */
  readonly keyFile?: string;
  /** PEM CA bundle peers' certificates must chain to; the system CAs when absent. */
  readonly trustedCaFile?: string;
  /** Require and verify a certificate from every peer that dials in (mutual TLS). */
  readonly clientCertAuth?: boolean;
}

export interface LoadedTls {
  /** Null when no certificate is configured: such a node can dial https:// peers (without mTLS) but not serve. */
  readonly server: TlsOptions | null;
  readonly client: ConnectionOptions;
}

export function loadPeerTls(config: PeerTlsConfig): LoadedTls {
  return loadTls(config, "peer", "--peer-");
}

/**
 * The same files and rules for any listener: `what` names it in errors
 * ("peer", "client") and `flagPrefix` is its flags' ("--peer-", "--"), so
 * the client port (--cert-file, --key-file, --trusted-ca-file,
 * --client-cert-auth) loads its files exactly as the peer port does.
 */
export function loadTls(config: PeerTlsConfig, what: string, flagPrefix: string): LoadedTls {
  if ((config.certFile === undefined) !== (config.keyFile === undefined)) {
    throw new TransportConfigError(`${flagPrefix}cert-file and ${flagPrefix}key-file must be given together`);
  }
  const cert = config.certFile === undefined ? undefined : readPem(config.certFile, `${what} certificate (${flagPrefix}cert-file)`);
  const key = config.keyFile === undefined ? undefined : readPem(config.keyFile, `${what} key (${flagPrefix}key-file)`);
  const ca = config.trustedCaFile === undefined ? undefined : readPem(config.trustedCaFile, `${what} trusted CA (${flagPrefix}trusted-ca-file)`);
  const clientCertAuth = config.clientCertAuth === true;
  if (clientCertAuth && ca === undefined) {
    throw new TransportConfigError(`${flagPrefix}client-cert-auth needs ${flagPrefix}trusted-ca-file to verify ${what === "peer" ? "peers'" : "clients'"} certificates`);
  }
  return {
    server: cert === undefined ? null : { cert, key, ca, requestCert: clientCertAuth, rejectUnauthorized: clientCertAuth, minVersion: "TLSv1.2" },
    client: { cert, key, ca, rejectUnauthorized: true, minVersion: "TLSv1.2" },
  };
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new TransportConfigError(`cannot read the ${what} at ${path}`, { cause: error });
  }
}
