/**
 * Precompiled encoders and decoders for etcd's hot messages (KV, Watch,
 * Lease). Each message has a `write*` (fields in field-number order, proto3
 * defaults skipped, so the bytes equal those of protobufjs or Go's encoder)
 * and a `read*` (every scalar filled with its default, unknown fields skipped,
 * wire types checked).
 */
import type {
  Compare, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, Event, KeyValue,
  LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
  LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader,
  ResponseOp, TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest, WatchResponse,
} from "./messages.js";
import { handWrittenCodec } from "./codec.js";
import { ProtobufDecodeError, ProtoReader, ProtoWriter, WireType } from "./wire.js";

const EMPTY_BYTES: Uint8Array = Buffer.alloc(0);

/**
 * Txn requests nest (a RequestOp may hold a TxnRequest): a hostile message of
 * a few hundred kilobytes could otherwise nest deep enough to overflow the
 * stack. protobuf's own default recursion limit is 100.
 */
export const TXN_NESTING_DEPTH_MAX = 64;

function checkDepth(depth: number): void {
  if (depth > TXN_NESTING_DEPTH_MAX) {
    throw new ProtobufDecodeError(`txn nesting deeper than ${TXN_NESTING_DEPTH_MAX} levels`);
  }
}

// ------------------------------------------------------------ ResponseHeader

export function writeResponseHeader(writer: ProtoWriter, header: ResponseHeader): void {
  writer.int64BigintField(1, header.clusterId);
  writer.int64BigintField(2, header.memberId);
  writer.int64NumberField(3, header.revision);
  writer.int64NumberField(4, header.raftTerm);
}

export function readResponseHeader(reader: ProtoReader): ResponseHeader {
  const header: ResponseHeader = { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: header.clusterId = reader.uint64BigintField(); break;
      case 2: header.memberId = reader.uint64BigintField(); break;
      case 3: header.revision = reader.numberField(); break;
      case 4: header.raftTerm = reader.numberField(); break;
      default: reader.skip();
    }
  }
  return header;
}

function writeMessageField<T>(writer: ProtoWriter, fieldNumber: number, value: T | undefined, write: (writer: ProtoWriter, value: T) => void): void {
  if (value === undefined) return;
  const marker = writer.beginLengthDelimited(fieldNumber);
  write(writer, value);
  writer.endLengthDelimited(marker);
}

// ------------------------------------------------------------ KeyValue, Event

export function writeKeyValue(writer: ProtoWriter, kv: KeyValue): void {
  writer.bytesField(1, kv.key);
  writer.int64NumberField(2, kv.createRevision);
  writer.int64NumberField(3, kv.modRevision);
  writer.int64NumberField(4, kv.version);
  writer.bytesField(5, kv.value);
  writer.int64BigintField(6, kv.lease);
}

export function readKeyValue(reader: ProtoReader): KeyValue {
  const kv: KeyValue = { key: EMPTY_BYTES, createRevision: 0, modRevision: 0, version: 0, value: EMPTY_BYTES, lease: 0n };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: kv.key = reader.bytesField(); break;
      case 2: kv.createRevision = reader.numberField(); break;
      case 3: kv.modRevision = reader.numberField(); break;
      case 4: kv.version = reader.numberField(); break;
      case 5: kv.value = reader.bytesField(); break;
      case 6: kv.lease = reader.int64BigintField(); break;
      default: reader.skip();
    }
  }
  return kv;
}

export function writeEvent(writer: ProtoWriter, event: Event): void {
  writer.enumField(1, event.type);
  writeMessageField(writer, 2, event.kv, writeKeyValue);
  writeMessageField(writer, 3, event.prevKv, writeKeyValue);
}

export function readEvent(reader: ProtoReader): Event {
  const event: Event = { type: 0 };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: event.type = reader.enumField(); break;
      case 2: event.kv = readKeyValue(reader.messageField()); break;
      case 3: event.prevKv = readKeyValue(reader.messageField()); break;
      default: reader.skip();
    }
  }
  return event;
}

// ------------------------------------------------------------ Range

export function writeRangeRequest(writer: ProtoWriter, request: RangeRequest): void {
  writer.bytesField(1, request.key);
  writer.bytesField(2, request.rangeEnd);
  writer.int64NumberField(3, request.limit);
  writer.int64NumberField(4, request.revision);
  writer.enumField(5, request.sortOrder);
  writer.enumField(6, request.sortTarget);
  writer.boolField(7, request.serializable);
  writer.boolField(8, request.keysOnly);
  writer.boolField(9, request.countOnly);
  writer.int64NumberField(10, request.minModRevision);
  writer.int64NumberField(11, request.maxModRevision);
  writer.int64NumberField(12, request.minCreateRevision);
  writer.int64NumberField(13, request.maxCreateRevision);
}

export function emptyRangeRequest(): RangeRequest {
  return {
    key: EMPTY_BYTES, rangeEnd: EMPTY_BYTES, limit: 0, revision: 0, sortOrder: 0, sortTarget: 0,
    serializable: false, keysOnly: false, countOnly: false,
    minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0,
  };
}

export function readRangeRequest(reader: ProtoReader): RangeRequest {
  const request = emptyRangeRequest();
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request.key = reader.bytesField(); break;
      case 2: request.rangeEnd = reader.bytesField(); break;
      case 3: request.limit = reader.numberField(); break;
      case 4: request.revision = reader.numberField(); break;
      case 5: request.sortOrder = reader.enumField(); break;
      case 6: request.sortTarget = reader.enumField(); break;
      case 7: request.serializable = reader.boolField(); break;
      case 8: request.keysOnly = reader.boolField(); break;
      case 9: request.countOnly = reader.boolField(); break;
      case 10: request.minModRevision = reader.numberField(); break;
      case 11: request.maxModRevision = reader.numberField(); break;
      case 12: request.minCreateRevision = reader.numberField(); break;
      case 13: request.maxCreateRevision = reader.numberField(); break;
      default: reader.skip();
    }
  }
  return request;
}

export function writeRangeResponse(writer: ProtoWriter, response: RangeResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  for (const kv of response.kvs) writeMessageField(writer, 2, kv, writeKeyValue);
  writer.boolField(3, response.more);
  writer.int64NumberField(4, response.count);
}

export function readRangeResponse(reader: ProtoReader): RangeResponse {
  const response: RangeResponse = { kvs: [], more: false, count: 0 };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.kvs.push(readKeyValue(reader.messageField())); break;
      case 3: response.more = reader.boolField(); break;
      case 4: response.count = reader.numberField(); break;
      default: reader.skip();
    }
  }
  return response;
}

// ------------------------------------------------------------ Put

export function writePutRequest(writer: ProtoWriter, request: PutRequest): void {
  writer.bytesField(1, request.key);
  writer.bytesField(2, request.value);
  writer.int64BigintField(3, request.lease);
  writer.boolField(4, request.prevKv);
  writer.boolField(5, request.ignoreValue);
  writer.boolField(6, request.ignoreLease);
}

export function readPutRequest(reader: ProtoReader): PutRequest {
  const request: PutRequest = { key: EMPTY_BYTES, value: EMPTY_BYTES, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request.key = reader.bytesField(); break;
      case 2: request.value = reader.bytesField(); break;
      case 3: request.lease = reader.int64BigintField(); break;
      case 4: request.prevKv = reader.boolField(); break;
      case 5: request.ignoreValue = reader.boolField(); break;
      case 6: request.ignoreLease = reader.boolField(); break;
      default: reader.skip();
    }
  }
  return request;
}

export function writePutResponse(writer: ProtoWriter, response: PutResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  writeMessageField(writer, 2, response.prevKv, writeKeyValue);
}

export function readPutResponse(reader: ProtoReader): PutResponse {
  const response: PutResponse = {};
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.prevKv = readKeyValue(reader.messageField()); break;
      default: reader.skip();
    }
  }
  return response;
}

// ------------------------------------------------------------ DeleteRange

export function writeDeleteRangeRequest(writer: ProtoWriter, request: DeleteRangeRequest): void {
  writer.bytesField(1, request.key);
  writer.bytesField(2, request.rangeEnd);
  writer.boolField(3, request.prevKv);
}

export function readDeleteRangeRequest(reader: ProtoReader): DeleteRangeRequest {
  const request: DeleteRangeRequest = { key: EMPTY_BYTES, rangeEnd: EMPTY_BYTES, prevKv: false };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request.key = reader.bytesField(); break;
      case 2: request.rangeEnd = reader.bytesField(); break;
      case 3: request.prevKv = reader.boolField(); break;
      default: reader.skip();
    }
  }
  return request;
}

export function writeDeleteRangeResponse(writer: ProtoWriter, response: DeleteRangeResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  writer.int64NumberField(2, response.deleted);
  for (const kv of response.prevKvs) writeMessageField(writer, 3, kv, writeKeyValue);
}

export function readDeleteRangeResponse(reader: ProtoReader): DeleteRangeResponse {
  const response: DeleteRangeResponse = { deleted: 0, prevKvs: [] };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.deleted = reader.numberField(); break;
      case 3: response.prevKvs.push(readKeyValue(reader.messageField())); break;
      default: reader.skip();
    }
  }
  return response;
}

// ------------------------------------------------------------ Txn

export function writeCompare(writer: ProtoWriter, compare: Compare): void {
  writer.enumField(1, compare.result);
  writer.enumField(2, compare.target);
  writer.bytesField(3, compare.key);
  // A set oneof member is written even when it holds its zero value.
  if (compare.version !== undefined) { writer.tag(4, WireType.varint); writer.int64Number(compare.version); }
  else if (compare.createRevision !== undefined) { writer.tag(5, WireType.varint); writer.int64Number(compare.createRevision); }
  else if (compare.modRevision !== undefined) { writer.tag(6, WireType.varint); writer.int64Number(compare.modRevision); }
  else if (compare.value !== undefined) { writer.tag(7, WireType.lengthDelimited); writer.bytes(compare.value); }
  else if (compare.lease !== undefined) { writer.tag(8, WireType.varint); writer.int64Bigint(compare.lease); }
  writer.bytesField(64, compare.rangeEnd);
}

export function readCompare(reader: ProtoReader): Compare {
  const compare: Compare = { result: 0, target: 0, key: EMPTY_BYTES, rangeEnd: EMPTY_BYTES };
  const clearUnion = (): void => {
    delete compare.version; delete compare.createRevision; delete compare.modRevision; delete compare.value; delete compare.lease;
  };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: compare.result = reader.enumField(); break;
      case 2: compare.target = reader.enumField(); break;
      case 3: compare.key = reader.bytesField(); break;
      // The last oneof member on the wire wins, as in every protobuf decoder.
      case 4: { const value = reader.numberField(); clearUnion(); compare.version = value; break; }
      case 5: { const value = reader.numberField(); clearUnion(); compare.createRevision = value; break; }
      case 6: { const value = reader.numberField(); clearUnion(); compare.modRevision = value; break; }
      case 7: { const value = reader.bytesField(); clearUnion(); compare.value = value; break; }
      case 8: { const value = reader.int64BigintField(); clearUnion(); compare.lease = value; break; }
      case 64: compare.rangeEnd = reader.bytesField(); break;
      default: reader.skip();
    }
  }
  return compare;
}

function writeRequestOp(writer: ProtoWriter, op: RequestOp): void {
  if ("requestRange" in op) writeMessageField(writer, 1, op.requestRange, writeRangeRequest);
  else if ("requestPut" in op) writeMessageField(writer, 2, op.requestPut, writePutRequest);
  else if ("requestDeleteRange" in op) writeMessageField(writer, 3, op.requestDeleteRange, writeDeleteRangeRequest);
  else writeMessageField(writer, 4, op.requestTxn, writeTxnRequest);
}

function readRequestOp(reader: ProtoReader, depth: number): RequestOp | undefined {
  let op: RequestOp | undefined;
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: op = { requestRange: readRangeRequest(reader.messageField()) }; break;
      case 2: op = { requestPut: readPutRequest(reader.messageField()) }; break;
      case 3: op = { requestDeleteRange: readDeleteRangeRequest(reader.messageField()) }; break;
      case 4: op = { requestTxn: readTxnRequestAt(reader.messageField(), depth + 1) }; break;
      default: reader.skip();
    }
  }
  return op;
}

export function writeTxnRequest(writer: ProtoWriter, request: TxnRequest): void {
  for (const compare of request.compare) writeMessageField(writer, 1, compare, writeCompare);
  for (const op of request.success) writeMessageField(writer, 2, op, writeRequestOp);
  for (const op of request.failure) writeMessageField(writer, 3, op, writeRequestOp);
}

export function readTxnRequest(reader: ProtoReader): TxnRequest {
  return readTxnRequestAt(reader, 0);
}

/**
 * A RequestOp with no member set is valid protobuf (etcd's server then
 * ignores it); it is kept out of the branch rather than invented.
 */
function readTxnRequestAt(reader: ProtoReader, depth: number): TxnRequest {
  checkDepth(depth);
  const request: TxnRequest = { compare: [], success: [], failure: [] };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request.compare.push(readCompare(reader.messageField())); break;
      case 2: { const op = readRequestOp(reader.messageField(), depth); if (op) request.success.push(op); break; }
      case 3: { const op = readRequestOp(reader.messageField(), depth); if (op) request.failure.push(op); break; }
      default: reader.skip();
    }
  }
  return request;
}

function writeResponseOp(writer: ProtoWriter, op: ResponseOp): void {
  if ("responseRange" in op) writeMessageField(writer, 1, op.responseRange, writeRangeResponse);
  else if ("responsePut" in op) writeMessageField(writer, 2, op.responsePut, writePutResponse);
  else if ("responseDeleteRange" in op) writeMessageField(writer, 3, op.responseDeleteRange, writeDeleteRangeResponse);
  else writeMessageField(writer, 4, op.responseTxn, writeTxnResponse);
}

function readResponseOp(reader: ProtoReader, depth: number): ResponseOp | undefined {
  let op: ResponseOp | undefined;
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: op = { responseRange: readRangeResponse(reader.messageField()) }; break;
      case 2: op = { responsePut: readPutResponse(reader.messageField()) }; break;
      case 3: op = { responseDeleteRange: readDeleteRangeResponse(reader.messageField()) }; break;
      case 4: op = { responseTxn: readTxnResponseAt(reader.messageField(), depth + 1) }; break;
      default: reader.skip();
    }
  }
  return op;
}

export function writeTxnResponse(writer: ProtoWriter, response: TxnResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  writer.boolField(2, response.succeeded);
  for (const op of response.responses) writeMessageField(writer, 3, op, writeResponseOp);
}

export function readTxnResponse(reader: ProtoReader): TxnResponse {
  return readTxnResponseAt(reader, 0);
}

function readTxnResponseAt(reader: ProtoReader, depth: number): TxnResponse {
  checkDepth(depth);
  const response: TxnResponse = { succeeded: false, responses: [] };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.succeeded = reader.boolField(); break;
      case 3: { const op = readResponseOp(reader.messageField(), depth); if (op) response.responses.push(op); break; }
      default: reader.skip();
    }
  }
  return response;
}

// ------------------------------------------------------------ Compact

export function writeCompactionRequest(writer: ProtoWriter, request: CompactionRequest): void {
  writer.int64NumberField(1, request.revision);
  writer.boolField(2, request.physical);
}

export function readCompactionRequest(reader: ProtoReader): CompactionRequest {
  const request: CompactionRequest = { revision: 0, physical: false };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request.revision = reader.numberField(); break;
      case 2: request.physical = reader.boolField(); break;
      default: reader.skip();
    }
  }
  return request;
}

/** Messages whose only field is the response header (Compaction, LeaseRevoke, ...). */
export function writeHeaderOnly(writer: ProtoWriter, response: { header?: ResponseHeader }): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
}

export function readHeaderOnly(reader: ProtoReader): { header?: ResponseHeader } {
  const response: { header?: ResponseHeader } = {};
  while (reader.nextField()) {
    if (reader.fieldNumber === 1) response.header = readResponseHeader(reader.messageField());
    else reader.skip();
  }
  return response;
}

// ------------------------------------------------------------ Watch

function writeWatchCreateRequest(writer: ProtoWriter, request: WatchCreateRequest): void {
  writer.bytesField(1, request.key);
  writer.bytesField(2, request.rangeEnd);
  writer.int64NumberField(3, request.startRevision);
  writer.boolField(4, request.progressNotify);
  if (request.filters.length > 0) {
    const marker = writer.beginLengthDelimited(5);
    for (const filter of request.filters) writer.int64Number(filter);
    writer.endLengthDelimited(marker);
  }
  writer.boolField(6, request.prevKv);
  writer.int64NumberField(7, request.watchId);
  writer.boolField(8, request.fragment);
}

function readWatchCreateRequest(reader: ProtoReader): WatchCreateRequest {
  const request: WatchCreateRequest = {
    key: EMPTY_BYTES, rangeEnd: EMPTY_BYTES, startRevision: 0, progressNotify: false,
    filters: [], prevKv: false, watchId: 0, fragment: false,
  };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request.key = reader.bytesField(); break;
      case 2: request.rangeEnd = reader.bytesField(); break;
      case 3: request.startRevision = reader.numberField(); break;
      case 4: request.progressNotify = reader.boolField(); break;
      case 5: reader.repeatedEnum(request.filters); break;
      case 6: request.prevKv = reader.boolField(); break;
      case 7: request.watchId = reader.numberField(); break;
      case 8: request.fragment = reader.boolField(); break;
      default: reader.skip();
    }
  }
  return request;
}

export function writeWatchRequest(writer: ProtoWriter, request: WatchRequest): void {
  if ("createRequest" in request) writeMessageField(writer, 1, request.createRequest, writeWatchCreateRequest);
  else if ("cancelRequest" in request) {
    const marker = writer.beginLengthDelimited(2);
    writer.int64NumberField(1, request.cancelRequest.watchId);
    writer.endLengthDelimited(marker);
  } else if ("progressRequest" in request) writer.endLengthDelimited(writer.beginLengthDelimited(3));
}

/** A WatchRequest with no member set decodes to { none }, which the Watch service skips as etcd does. */
export function readWatchRequest(reader: ProtoReader): WatchRequest {
  let request: WatchRequest | undefined;
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request = { createRequest: readWatchCreateRequest(reader.messageField()) }; break;
      case 2: {
        const cancel = reader.messageField();
        let watchId = 0;
        while (cancel.nextField()) {
          if (cancel.fieldNumber === 1) watchId = cancel.numberField();
          else cancel.skip();
        }
        request = { cancelRequest: { watchId } };
        break;
      }
      case 3: {
        const progress = reader.messageField();
        while (progress.nextField()) progress.skip();
        request = { progressRequest: {} };
        break;
      }
      default: reader.skip();
    }
  }
  return request ?? { none: {} };
}

export function writeWatchResponse(writer: ProtoWriter, response: WatchResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  writer.int64NumberField(2, response.watchId);
  writer.boolField(3, response.created);
  writer.boolField(4, response.canceled);
  writer.int64NumberField(5, response.compactRevision);
  writer.stringField(6, response.cancelReason);
  writer.boolField(7, response.fragment);
  for (const event of response.events) writeMessageField(writer, 11, event, writeEvent);
}

export function readWatchResponse(reader: ProtoReader): WatchResponse {
  const response: WatchResponse = {
    watchId: 0, created: false, canceled: false, compactRevision: 0, cancelReason: "", fragment: false, events: [],
  };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.watchId = reader.numberField(); break;
      case 3: response.created = reader.boolField(); break;
      case 4: response.canceled = reader.boolField(); break;
      case 5: response.compactRevision = reader.numberField(); break;
      case 6: response.cancelReason = reader.stringField(); break;
      case 7: response.fragment = reader.boolField(); break;
      case 11: response.events.push(readEvent(reader.messageField())); break;
      default: reader.skip();
    }
  }
  return response;
}

// ------------------------------------------------------------ Lease

/** Reads a message whose fields are all lease ids (field 1) and flags; shared by the small lease requests. */
function readLeaseId(reader: ProtoReader): { ID: bigint } {
  const request = { ID: 0n };
  while (reader.nextField()) {
    if (reader.fieldNumber === 1) request.ID = reader.int64BigintField();
    else reader.skip();
  }
  return request;
}

function writeLeaseId(writer: ProtoWriter, request: { ID: bigint }): void {
  writer.int64BigintField(1, request.ID);
}

export function writeLeaseGrantRequest(writer: ProtoWriter, request: LeaseGrantRequest): void {
  writer.int64NumberField(1, request.TTL);
  writer.int64BigintField(2, request.ID);
}

export function readLeaseGrantRequest(reader: ProtoReader): LeaseGrantRequest {
  const request: LeaseGrantRequest = { TTL: 0, ID: 0n };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request.TTL = reader.numberField(); break;
      case 2: request.ID = reader.int64BigintField(); break;
      default: reader.skip();
    }
  }
  return request;
}

export function writeLeaseGrantResponse(writer: ProtoWriter, response: LeaseGrantResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  writer.int64BigintField(2, response.ID);
  writer.int64NumberField(3, response.TTL);
  writer.stringField(4, response.error);
}

export function readLeaseGrantResponse(reader: ProtoReader): LeaseGrantResponse {
  const response: LeaseGrantResponse = { ID: 0n, TTL: 0, error: "" };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.ID = reader.int64BigintField(); break;
      case 3: response.TTL = reader.numberField(); break;
      case 4: response.error = reader.stringField(); break;
      default: reader.skip();
    }
  }
  return response;
}

export function writeLeaseKeepAliveResponse(writer: ProtoWriter, response: LeaseKeepAliveResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  writer.int64BigintField(2, response.ID);
  writer.int64NumberField(3, response.TTL);
}

export function readLeaseKeepAliveResponse(reader: ProtoReader): LeaseKeepAliveResponse {
  const response: LeaseKeepAliveResponse = { ID: 0n, TTL: 0 };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.ID = reader.int64BigintField(); break;
      case 3: response.TTL = reader.numberField(); break;
      default: reader.skip();
    }
  }
  return response;
}

export function writeLeaseTimeToLiveRequest(writer: ProtoWriter, request: LeaseTimeToLiveRequest): void {
  writer.int64BigintField(1, request.ID);
  writer.boolField(2, request.keys);
}

export function readLeaseTimeToLiveRequest(reader: ProtoReader): LeaseTimeToLiveRequest {
  const request: LeaseTimeToLiveRequest = { ID: 0n, keys: false };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: request.ID = reader.int64BigintField(); break;
      case 2: request.keys = reader.boolField(); break;
      default: reader.skip();
    }
  }
  return request;
}

export function writeLeaseTimeToLiveResponse(writer: ProtoWriter, response: LeaseTimeToLiveResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  writer.int64BigintField(2, response.ID);
  writer.int64NumberField(3, response.TTL);
  writer.int64NumberField(4, response.grantedTTL);
  for (const key of response.keys) { writer.tag(5, WireType.lengthDelimited); writer.bytes(key); }
}

export function readLeaseTimeToLiveResponse(reader: ProtoReader): LeaseTimeToLiveResponse {
  const response: LeaseTimeToLiveResponse = { ID: 0n, TTL: 0, grantedTTL: 0, keys: [] };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.ID = reader.int64BigintField(); break;
      case 3: response.TTL = reader.numberField(); break;
      case 4: response.grantedTTL = reader.numberField(); break;
      case 5: response.keys.push(reader.bytesField()); break;
      default: reader.skip();
    }
  }
  return response;
}

export function writeLeaseLeasesResponse(writer: ProtoWriter, response: LeaseLeasesResponse): void {
  writeMessageField(writer, 1, response.header, writeResponseHeader);
  for (const lease of response.leases) writeMessageField(writer, 2, lease, writeLeaseId);
}

export function readLeaseLeasesResponse(reader: ProtoReader): LeaseLeasesResponse {
  const response: LeaseLeasesResponse = { leases: [] };
  while (reader.nextField()) {
    switch (reader.fieldNumber) {
      case 1: response.header = readResponseHeader(reader.messageField()); break;
      case 2: response.leases.push(readLeaseId(reader.messageField()) as LeaseStatus); break;
      default: reader.skip();
    }
  }
  return response;
}

function readEmpty(reader: ProtoReader): Record<string, never> {
  while (reader.nextField()) reader.skip();
  return {};
}

// ------------------------------------------------------------ codec table

/** Request/response codecs per RPC, keyed the way the services register them. */
export const etcdCodecs = {
  rangeRequest: handWrittenCodec<RangeRequest>(writeRangeRequest, readRangeRequest),
  rangeResponse: handWrittenCodec<RangeResponse>(writeRangeResponse, readRangeResponse),
  putRequest: handWrittenCodec<PutRequest>(writePutRequest, readPutRequest),
  putResponse: handWrittenCodec<PutResponse>(writePutResponse, readPutResponse),
  deleteRangeRequest: handWrittenCodec<DeleteRangeRequest>(writeDeleteRangeRequest, readDeleteRangeRequest),
  deleteRangeResponse: handWrittenCodec<DeleteRangeResponse>(writeDeleteRangeResponse, readDeleteRangeResponse),
  txnRequest: handWrittenCodec<TxnRequest>(writeTxnRequest, readTxnRequest),
  txnResponse: handWrittenCodec<TxnResponse>(writeTxnResponse, readTxnResponse),
  compactionRequest: handWrittenCodec<CompactionRequest>(writeCompactionRequest, readCompactionRequest),
  compactionResponse: handWrittenCodec<CompactionResponse>(writeHeaderOnly, readHeaderOnly),
  watchRequest: handWrittenCodec<WatchRequest>(writeWatchRequest, readWatchRequest),
  watchResponse: handWrittenCodec<WatchResponse>(writeWatchResponse, readWatchResponse),
  leaseGrantRequest: handWrittenCodec<LeaseGrantRequest>(writeLeaseGrantRequest, readLeaseGrantRequest),
  leaseGrantResponse: handWrittenCodec<LeaseGrantResponse>(writeLeaseGrantResponse, readLeaseGrantResponse),
  leaseRevokeRequest: handWrittenCodec<LeaseRevokeRequest>(writeLeaseId, readLeaseId),
  leaseRevokeResponse: handWrittenCodec<LeaseRevokeResponse>(writeHeaderOnly, readHeaderOnly),
  leaseKeepAliveRequest: handWrittenCodec<LeaseKeepAliveRequest>(writeLeaseId, readLeaseId),
  leaseKeepAliveResponse: handWrittenCodec<LeaseKeepAliveResponse>(writeLeaseKeepAliveResponse, readLeaseKeepAliveResponse),
  leaseTimeToLiveRequest: handWrittenCodec<LeaseTimeToLiveRequest>(writeLeaseTimeToLiveRequest, readLeaseTimeToLiveRequest),
  leaseTimeToLiveResponse: handWrittenCodec<LeaseTimeToLiveResponse>(writeLeaseTimeToLiveResponse, readLeaseTimeToLiveResponse),
  leaseLeasesRequest: handWrittenCodec<LeaseLeasesRequest>(() => undefined, readEmpty),
  leaseLeasesResponse: handWrittenCodec<LeaseLeasesResponse>(writeLeaseLeasesResponse, readLeaseLeasesResponse),
};
