/**
 * etcd's Maintenance service on a MaintenanceBackend, with etcd's server
 * semantics: Status fields as etcd fills them (a missing leader and every
 * active alarm are listed in `errors`), HashKV with its compact and hash
 * revisions, Alarm get/activate/deactivate, MoveLeader, Defragment, and the
 * snapshot streamed in bounded messages whose remaining_bytes counts down to
 * 0 on the last one. Headers carry the store's current revision.
 *
 * Where Cairn differs: Hash (the hash of etcd's whole bbolt file) answers the
 * KV hash at the current revision, since Cairn's store is not a bbolt file;
 * the snapshot is in Cairn's own checksummed format; Downgrade is not built.
 */
import { assert } from "../../lib/assert.js";
import type { AlarmInfo, MaintenanceBackend } from "../backend.js";
import {
  AlarmAction, AlarmType, type AlarmMember, type AlarmRequest, type AlarmResponse, type DowngradeResponse, type EmptyRequest,
  type HashKVRequest, type HashKVResponse, type HashResponse, type HeaderOnlyResponse, type MoveLeaderRequest,
  type SnapshotResponse, type StatusResponse,
} from "../cold-messages.js";
import { etcdErrorTable } from "../etcd-errors.js";
import type { CallContext, ResponseSink } from "../grpc/server.js";
import { GrpcError, GrpcStatus } from "../grpc/status.js";
import type { MaintenanceHandler } from "../handlers.js";
import type { ResponseHeader } from "../protobuf/messages.js";
import { headerOf, mapped, refuseOnLearner } from "./common.js";

/** Largest blob in one Snapshot message: small enough for any client's default receive limit, large enough to stream quickly. */
export const SNAPSHOT_MESSAGE_BYTES_MAX = 256 * 1024;

const ALARM_NAMES = new Map<number, string>([[AlarmType.none, "NONE"], [AlarmType.noSpace, "NOSPACE"], [AlarmType.corrupt, "CORRUPT"]]);

/** etcd lists alarms in Status.errors as the protobuf text of AlarmMember. */
export function alarmText(alarm: AlarmInfo): string {
  return `memberID:${alarm.memberId} alarm:${ALARM_NAMES.get(alarm.alarm) ?? String(alarm.alarm)} `;
}

function toWireAlarm(alarm: AlarmInfo): AlarmMember {
  return { memberID: alarm.memberId, alarm: alarm.alarm };
}

export class MaintenanceService implements MaintenanceHandler {
  constructor(private readonly backend: MaintenanceBackend) {}

  private header(revision = this.backend.currentRevision()): ResponseHeader {
    return headerOf(this.backend, revision);
  }

  /** Served on learners too, as in etcd. */
  status(_request: EmptyRequest, context: CallContext): Promise<StatusResponse> {
    return mapped(context.signal, async () => {
      const status = this.backend.status();
      const errors = [...status.errors];
      if (status.leader === 0n) errors.push(etcdErrorTable.noLeader.message);
      for (const alarm of this.backend.alarms()) errors.push(alarmText(alarm));
      return {
        header: this.header(), version: status.version, dbSize: status.dbSizeBytes, leader: status.leader, raftIndex: status.raftIndex,
        raftTerm: status.raftTerm, raftAppliedIndex: status.raftAppliedIndex, errors, dbSizeInUse: status.dbSizeInUseBytes,
        isLearner: status.isLearner,
      };
    });
  }

  alarm(request: AlarmRequest, context: CallContext): Promise<AlarmResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      switch (request.action) {
        case AlarmAction.get: {
          const alarms = this.backend.alarms().filter((alarm) => request.alarm === AlarmType.none || alarm.alarm === request.alarm);
          return { header: this.header(), alarms: alarms.map(toWireAlarm) };
        }
        case AlarmAction.activate:
        case AlarmAction.deactivate: {
          if (request.alarm !== AlarmType.noSpace && request.alarm !== AlarmType.corrupt) {
            throw new GrpcError(GrpcStatus.invalidArgument, `cairn: alarm type ${request.alarm} cannot be activated or deactivated`);
          }
          const changed = request.action === AlarmAction.activate
            ? await this.backend.activateAlarm(request.memberID, request.alarm, context.signal)
            : await this.backend.deactivateAlarm(request.memberID, request.alarm, context.signal);
          return { header: this.header(), alarms: changed === null ? [] : [toWireAlarm(changed)] };
        }
        default:
          throw new GrpcError(GrpcStatus.invalidArgument, `cairn: unknown alarm action ${request.action}`);
      }
    });
  }

  defragment(_request: EmptyRequest, context: CallContext): Promise<HeaderOnlyResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      await this.backend.defragment(context.signal);
      return { header: this.header() };
    });
  }

  hash(_request: EmptyRequest, context: CallContext): Promise<HashResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      const result = this.backend.hashKv(0);
      return { header: this.header(result.revision), hash: result.hash };
    });
  }

  hashKV(request: HashKVRequest, context: CallContext): Promise<HashKVResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      // etcd reads a revision <= 0 as "the current one".
      const result = this.backend.hashKv(Math.max(0, request.revision));
      return { header: this.header(result.revision), hash: result.hash, compactRevision: result.compactRevision, hashRevision: result.hashRevision };
    });
  }

  /** Served on learners too (etcd's stream interceptor lets Snapshot through). */
  snapshot(_request: EmptyRequest, responses: ResponseSink<SnapshotResponse>, context: CallContext): Promise<void> {
    return mapped(context.signal, async () => {
      const snapshot = await this.backend.snapshot(context.signal);
      let header: ResponseHeader | undefined = this.header(snapshot.revision);
      let sentBytes = 0;
      // One message of lookahead, so the last one can say remaining_bytes = 0.
      let pending: Uint8Array | null = null;
      const send = async (blob: Uint8Array, last: boolean): Promise<void> => {
        sentBytes += blob.length;
        const remainingBytes = last ? 0 : Math.max(1, snapshot.sizeBytesEstimate - sentBytes);
        await responses.send({ header, remainingBytes, blob });
        header = undefined;
      };
      for await (const chunk of snapshot.chunks) {
        for (let offset = 0; offset < chunk.length; offset += SNAPSHOT_MESSAGE_BYTES_MAX) {
          if (pending !== null) await send(pending, false);
          pending = chunk.subarray(offset, offset + SNAPSHOT_MESSAGE_BYTES_MAX);
          context.signal.throwIfAborted();
        }
      }
      assert(pending !== null, "a snapshot stream carried no bytes");
      await send(pending, true);
    });
  }

  moveLeader(request: MoveLeaderRequest, context: CallContext): Promise<HeaderOnlyResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      await this.backend.moveLeader(request.targetID, context.signal);
      return { header: this.header() };
    });
  }

  async downgrade(): Promise<DowngradeResponse> {
    throw new GrpcError(GrpcStatus.unimplemented, "cairn: cluster downgrade is not supported");
  }
}
