/**
 * etcd's server errors, exactly as etcd sends them (api/v3rpc/rpctypes): the
 * gRPC status code and the message text. Clients match on the text (the
 * `etcd3` npm client maps "etcdserver: requested lease not found" to
 * EtcdLeaseInvalidError; Go's clientv3 turns every one of these strings back
 * into its rpctypes error), so the strings are part of the wire contract.
 *
 * The runtime throws `new EtcdError("compacted")` (or `EtcdError.of(...)`) and
 * the server answers with the code and text below.
 */
import { GrpcError, GrpcStatus, type GrpcStatusCode } from "./grpc/status.js";

interface ErrorEntry {
  readonly code: GrpcStatusCode;
  readonly message: string;
}

const entry = (code: GrpcStatusCode, message: string): ErrorEntry => ({ code, message });
const { invalidArgument, outOfRange, resourceExhausted, notFound, failedPrecondition, permissionDenied, unauthenticated, unavailable, dataLoss } = GrpcStatus;

export const etcdErrorTable = {
  // KV requests
  emptyKey: entry(invalidArgument, "etcdserver: key is not provided"),
  keyNotFound: entry(invalidArgument, "etcdserver: key not found"),
  valueProvided: entry(invalidArgument, "etcdserver: value is provided"),
  leaseProvided: entry(invalidArgument, "etcdserver: lease is provided"),
  ttlZero: entry(invalidArgument, "etcdserver: ttl is 0"),
  tooManyOps: entry(invalidArgument, "etcdserver: too many operations in txn request"),
  duplicateKey: entry(invalidArgument, "etcdserver: duplicate key given in txn request"),
  compacted: entry(outOfRange, "etcdserver: mvcc: required revision has been compacted"),
  futureRevision: entry(outOfRange, "etcdserver: mvcc: required revision is a future revision"),
  noSpace: entry(resourceExhausted, "etcdserver: mvcc: database space exceeded"),
  invalidSortOption: entry(invalidArgument, "etcdserver: invalid sort option"),
  // Leases
  leaseNotFound: entry(notFound, "etcdserver: requested lease not found"),
  leaseExists: entry(failedPrecondition, "etcdserver: lease already exists"),
  leaseTtlTooLarge: entry(outOfRange, "etcdserver: too large lease TTL"),
  // Membership
  memberExists: entry(failedPrecondition, "etcdserver: member ID already exist"),
  peerUrlExists: entry(failedPrecondition, "etcdserver: Peer URLs already exists"),
  memberNotEnoughStarted: entry(failedPrecondition, "etcdserver: re-configuration failed due to not enough started members"),
  memberBadUrls: entry(invalidArgument, "etcdserver: given member URLs are invalid"),
  memberNotFound: entry(notFound, "etcdserver: member not found"),
  memberNotLearner: entry(failedPrecondition, "etcdserver: can only promote a learner member"),
  learnerNotReady: entry(failedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader"),
  tooManyLearners: entry(failedPrecondition, "etcdserver: too many learner members in cluster"),
  // Request limits
  requestTooLarge: entry(invalidArgument, "etcdserver: request is too large"),
  tooManyRequests: entry(resourceExhausted, "etcdserver: too many requests"),
  // Auth (not built yet; listed so the runtime can use them when it is)
  rootUserNotExist: entry(failedPrecondition, "etcdserver: root user does not exist"),
  rootRoleNotExist: entry(failedPrecondition, "etcdserver: root user does not have root role"),
  userAlreadyExists: entry(failedPrecondition, "etcdserver: user name already exists"),
  userEmpty: entry(invalidArgument, "etcdserver: user name is empty"),
  userNotFound: entry(failedPrecondition, "etcdserver: user name not found"),
  roleAlreadyExists: entry(failedPrecondition, "etcdserver: role name already exists"),
  roleNotFound: entry(failedPrecondition, "etcdserver: role name not found"),
  roleEmpty: entry(invalidArgument, "etcdserver: role name is empty"),
  authFailed: entry(invalidArgument, "etcdserver: authentication failed, invalid user ID or password"),
  permissionDenied: entry(permissionDenied, "etcdserver: permission denied"),
  roleNotGranted: entry(failedPrecondition, "etcdserver: role is not granted to the user"),
  permissionNotGranted: entry(failedPrecondition, "etcdserver: permission is not granted to the role"),
  authNotEnabled: entry(failedPrecondition, "etcdserver: authentication is not enabled"),
  invalidAuthToken: entry(unauthenticated, "etcdserver: invalid auth token"),
  invalidAuthManagement: entry(invalidArgument, "etcdserver: invalid auth management"),
  // Cluster health and leadership
  noLeader: entry(unavailable, "etcdserver: no leader"),
  notLeader: entry(failedPrecondition, "etcdserver: not leader"),
  leaderChanged: entry(unavailable, "etcdserver: leader changed"),
  notCapable: entry(unavailable, "etcdserver: not capable"),
  stopped: entry(unavailable, "etcdserver: server stopped"),
  timeout: entry(unavailable, "etcdserver: request timed out"),
  timeoutDueToLeaderFail: entry(unavailable, "etcdserver: request timed out, possibly due to previous leader failure"),
  timeoutDueToConnectionLost: entry(unavailable, "etcdserver: request timed out, possibly due to connection lost"),
  unhealthy: entry(unavailable, "etcdserver: unhealthy cluster"),
  corrupt: entry(dataLoss, "etcdserver: corrupt cluster"),
  notSupportedForLearner: entry(unavailable, "etcdserver: rpc not supported for learner"),
  badLeaderTransferee: entry(failedPrecondition, "etcdserver: bad leader transferee"),
  // Downgrades
  clusterVersionUnavailable: entry(unavailable, "etcdserver: cluster version not found during downgrade"),
  wrongDowngradeVersionFormat: entry(invalidArgument, "etcdserver: wrong downgrade target version format"),
  invalidDowngradeTargetVersion: entry(invalidArgument, "etcdserver: invalid downgrade target version"),
  downgradeInProcess: entry(failedPrecondition, "etcdserver: cluster has a downgrade job in progress"),
  noInflightDowngrade: entry(failedPrecondition, "etcdserver: no inflight downgrade job"),
} as const satisfies Record<string, ErrorEntry>;

export type EtcdErrorKind = keyof typeof etcdErrorTable;

/**
 * One of etcd's errors. `kind` names it for code (`error.kind === "compacted"`);
 * code and message are what the client receives.
 */
export class EtcdError extends GrpcError {
  override name = "EtcdError";
  readonly kind: EtcdErrorKind;

  constructor(kind: EtcdErrorKind, options?: ErrorOptions) {
    const { code, message } = etcdErrorTable[kind];
    super(code, message, options);
    this.kind = kind;
  }

  static of(kind: EtcdErrorKind, cause?: unknown): EtcdError {
    return new EtcdError(kind, cause === undefined ? undefined : { cause });
  }
}

/** The etcd error a status message names, if any (clients do this lookup; tests and the client use it). */
export function etcdErrorKindOf(message: string): EtcdErrorKind | undefined {
  return kindByMessage.get(message);
}

const kindByMessage = new Map<string, EtcdErrorKind>(
  (Object.entries(etcdErrorTable) as Array<[EtcdErrorKind, ErrorEntry]>).map(([kind, { message }]) => [message, kind]),
);
