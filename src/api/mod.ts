/**
 * The client-facing gRPC layer: a lean HTTP/2 gRPC server, etcd's v3
 * services on it, the handler interfaces the node runtime implements, etcd's
 * exact errors, and the wire types and codecs.
 */
export {
  createGrpcServer, frameMessage, statusOf, GRPC_OVERHEAD_BYTES, STREAMS_PER_CONNECTION_MAX, REQUEST_QUEUE_MESSAGES_MAX,
  type GrpcServer, type GrpcServerOptions, type CallContext, type ResponseSink, type MethodCodecs,
  type UnaryHandler, type ServerStreamHandler, type BidiStreamHandler,
} from "./grpc/server.js";
export { GrpcError, GrpcStatus, grpcStatusName, encodeGrpcMessage, decodeGrpcMessage, type GrpcStatusCode } from "./grpc/status.js";
export { GrpcMessageParser, MessageTooLargeError, MalformedFrameError, FRAME_HEADER_BYTES } from "./grpc/message-parser.js";
export { parseGrpcTimeoutMs, formatGrpcTimeout, MalformedTimeoutError } from "./grpc/timeout.js";
export { EtcdError, etcdErrorTable, etcdErrorKindOf, type EtcdErrorKind } from "./etcd-errors.js";
export { registerEtcdServices, type EtcdServiceOptions } from "./etcd-services.js";
export type { EtcdHandlers, KvHandler, WatchHandler, LeaseHandler, ClusterHandler, MaintenanceHandler } from "./handlers.js";
export * from "./protobuf/messages.js";
export * from "./cold-messages.js";
export { etcdCodecs, TXN_NESTING_DEPTH_MAX } from "./protobuf/etcd-codecs.js";
export { handWrittenCodec, type MessageCodec } from "./protobuf/codec.js";
export { ProtoReader, ProtoWriter, ProtobufDecodeError, WireType } from "./protobuf/wire.js";
export { reflectionCodec, etcdProtoRoot, protoDirectory, ProtoFilesNotFoundError } from "./protobuf/reflection-codecs.js";
export * from "./backend.js";
export * from "./services/mod.js";
export { toApiError } from "./kv-mapping.js";
