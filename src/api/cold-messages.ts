/**
 * Messages of the cold RPCs (Cluster, Maintenance), served through
 * protobufjs codecs built from our .proto files. Field names are protobufjs's
 * camelCase of the .proto names. Ids (member, leader, target) are bigint;
 * sizes, indexes, terms and revisions are numbers. Decoded messages carry
 * every scalar field; embedded messages are optional.
 */
import type { ResponseHeader } from "./protobuf/messages.js";

export interface Member {
  ID: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface MemberAddRequest {
  peerURLs: string[];
  isLearner: boolean;
}

export interface MemberAddResponse {
  header?: ResponseHeader;
  member?: Member;
  members: Member[];
}

export interface MemberRemoveRequest {
  ID: bigint;
}

export interface MemberUpdateRequest {
  ID: bigint;
  peerURLs: string[];
}

export interface MemberListRequest {
  linearizable: boolean;
}

export interface MemberPromoteRequest {
  ID: bigint;
}

/** MemberRemove, MemberUpdate, MemberList and MemberPromote all answer with the member list. */
export interface MembersResponse {
  header?: ResponseHeader;
  members: Member[];
}

export const AlarmType = { none: 0, noSpace: 1, corrupt: 2 } as const;
export const AlarmAction = { get: 0, activate: 1, deactivate: 2 } as const;

export interface AlarmRequest {
  action: number;
  memberID: bigint;
  alarm: number;
}

export interface AlarmMember {
  memberID: bigint;
  alarm: number;
}

export interface AlarmResponse {
  header?: ResponseHeader;
  alarms: AlarmMember[];
}

export type EmptyRequest = Record<string, never>;

export interface StatusResponse {
  header?: ResponseHeader;
  version: string;
  dbSize: number;
  leader: bigint;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  errors: string[];
  dbSizeInUse: number;
  isLearner: boolean;
}

export interface HeaderOnlyResponse {
  header?: ResponseHeader;
}

export interface HashResponse {
  header?: ResponseHeader;
  hash: number;
}

export interface HashKVRequest {
  revision: number;
}

export interface HashKVResponse {
  header?: ResponseHeader;
  hash: number;
  compactRevision: number;
  hashRevision: number;
}

export interface SnapshotResponse {
  header?: ResponseHeader;
  remainingBytes: number;
  blob: Uint8Array;
}

export interface MoveLeaderRequest {
  targetID: bigint;
}

export interface DowngradeRequest {
  action: number;
  version: string;
}

export interface DowngradeResponse {
  header?: ResponseHeader;
  version: string;
}
