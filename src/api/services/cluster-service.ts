/**
 * etcd's Cluster service on a ClusterBackend, with etcd's server semantics:
 * peer URLs are checked as etcd's types.NewURLs does before anything is
 * proposed, each change answers with the member list after it (sorted by id,
 * as etcd's cluster.Members()), MemberList with linearizable = true passes
 * the read barrier first, and the header carries no revision (etcd's cluster
 * server leaves it 0).
 */
import type { ClusterBackend, MemberInfo } from "../backend.js";
import { BadMemberUrlsError } from "../backend.js";
import type {
  Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest, MembersResponse,
  MemberUpdateRequest,
} from "../cold-messages.js";
import type { CallContext } from "../grpc/server.js";
import type { ClusterHandler } from "../handlers.js";
import type { ResponseHeader } from "../protobuf/messages.js";
import { headerOf, mapped, refuseOnLearner } from "./common.js";

/** Peer URLs one request may carry; far more than any member has, small enough to bound the work. */
export const PEER_URLS_MAX = 64;

/**
 * etcd's URL rule for member peer URLs: http or https, "host:port" with
 * nothing after it. (etcd also takes unix sockets; Cairn's peer transport is
 * TCP only.) An empty list is refused, as etcd's "no valid URLs given".
 */
export function checkPeerUrls(urls: readonly string[]): string[] {
  if (urls.length === 0) throw new BadMemberUrlsError("", "no URL given");
  if (urls.length > PEER_URLS_MAX) throw new BadMemberUrlsError(urls[PEER_URLS_MAX], `more than ${PEER_URLS_MAX} URLs`);
  return urls.map((raw) => {
    const url = raw.trim();
    const match = /^(https?):\/\/([^/?#]+)$/.exec(url);
    if (match === null) throw new BadMemberUrlsError(raw, "expected http:// or https:// followed by host:port and nothing else");
    const hostPort = match[2];
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:[\]@]+):\d{1,5}$/.test(hostPort)) throw new BadMemberUrlsError(raw, "the address is not of the form host:port");
    const port = Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
    if (port > 65_535) throw new BadMemberUrlsError(raw, `port ${port} is out of range`);
    return url;
  });
}

function toWireMember(member: MemberInfo): Member {
  return { ID: member.id, name: member.name, peerURLs: [...member.peerUrls], clientURLs: [...member.clientUrls], isLearner: member.isLearner };
}

export class ClusterService implements ClusterHandler {
  constructor(private readonly backend: ClusterBackend) {}

  memberAdd(request: MemberAddRequest, context: CallContext): Promise<MemberAddResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      const peerUrls = checkPeerUrls(request.peerURLs);
      const added = await this.backend.addMember(peerUrls, request.isLearner, context.signal);
      return { ...this.membersResponse(), member: toWireMember(added) };
    });
  }

  memberRemove(request: MemberRemoveRequest, context: CallContext): Promise<MembersResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      await this.backend.removeMember(request.ID, context.signal);
      return this.membersResponse();
    });
  }

  memberUpdate(request: MemberUpdateRequest, context: CallContext): Promise<MembersResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      const peerUrls = checkPeerUrls(request.peerURLs);
      await this.backend.updateMember(request.ID, peerUrls, context.signal);
      return this.membersResponse();
    });
  }

  memberList(request: MemberListRequest, context: CallContext): Promise<MembersResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      if (request.linearizable) await this.backend.readBarrier(context.signal);
      return this.membersResponse();
    });
  }

  memberPromote(request: MemberPromoteRequest, context: CallContext): Promise<MembersResponse> {
    return mapped(context.signal, async () => {
      refuseOnLearner(this.backend);
      await this.backend.promoteMember(request.ID, context.signal);
      return this.membersResponse();
    });
  }

  private header(): ResponseHeader {
    return headerOf(this.backend, 0);
  }

  private membersResponse(): MembersResponse {
    const members = [...this.backend.members()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { header: this.header(), members: members.map(toWireMember) };
  }
}
