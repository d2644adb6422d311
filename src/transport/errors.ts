/**
 * One error class per failure the transport reports (STYLE habit 4). Callers
 * match on the class (or `name`); `cause` carries the underlying error when
 * there is one. Everything here derives from TransportError so a caller can
 * also catch the whole family.
 */
export class TransportError extends Error {
  override name = "TransportError";
}

/** Bytes from the network that do not form a valid Raft message. */
export class MessageDecodeError extends TransportError {
  override name = "MessageDecodeError";
}

/** A frame header announced a payload above the connection's cap. */
export class FrameTooLargeError extends TransportError {
  override name = "FrameTooLargeError";
  constructor(readonly payloadBytes: number, readonly payloadBytesMax: number) {
    super(`frame of ${payloadBytes} bytes exceeds the cap of ${payloadBytesMax} bytes`);
  }
}

/** A frame header carried a type byte this protocol does not define. */
export class UnknownFrameTypeError extends TransportError {
  override name = "UnknownFrameTypeError";
  constructor(readonly frameType: number) {
    super(`unknown frame type ${frameType}`);
  }
}

/** A decoder was fed again after it had already failed. */
export class DecoderFailedError extends TransportError {
  override name = "DecoderFailedError";
}

/** A handshake frame that cannot be parsed. */
export class HandshakeDecodeError extends TransportError {
  override name = "HandshakeDecodeError";
}

/** The remote side refused our connection and said why. */
export class HandshakeRefusedError extends TransportError {
  override name = "HandshakeRefusedError";
  constructor(readonly code: number, readonly reason: string, options?: { cause?: unknown }) {
    super(`peer refused the connection: ${reason}`, options);
  }
}

/** We refused the remote side's answer to our handshake (wrong cluster, wrong node). */
export class HandshakeRejectedError extends TransportError {
  override name = "HandshakeRejectedError";
  constructor(readonly code: number, readonly reason: string) {
    super(`refused the peer's handshake answer: ${reason}`);
  }
}

/** A peer sent a frame that is valid on its own but not allowed at this point of the conversation. */
export class ProtocolViolationError extends TransportError {
  override name = "ProtocolViolationError";
}

/** A peer URL that is not http://host:port or https://host:port. */
export class InvalidPeerUrlError extends TransportError {
  override name = "InvalidPeerUrlError";
}

/** A configuration that cannot work (e.g. an https:// listen URL without a certificate). */
export class TransportConfigError extends TransportError {
  override name = "TransportConfigError";
}

/** An operation named a peer the transport does not know. */
export class UnknownPeerError extends TransportError {
  override name = "UnknownPeerError";
}

/** The transport was closed while an operation was under way. */
export class TransportClosedError extends TransportError {
  override name = "TransportClosedError";
}

/** A connection did not complete a step (connect, handshake, snapshot answer) in time. */
export class TransportTimeoutError extends TransportError {
  override name = "TransportTimeoutError";
}

/** The connection went away before an operation on it finished. */
export class ConnectionLostError extends TransportError {
  override name = "ConnectionLostError";
}

/** A snapshot could not be delivered; `cause` says why. */
export class SnapshotSendError extends TransportError {
  override name = "SnapshotSendError";
}

/** A snapshot stream arrived damaged (length or checksum differ from what the sender announced). */
export class SnapshotCorruptError extends TransportError {
  override name = "SnapshotCorruptError";
}

/** Another snapshot to the same peer is still being sent. */
export class SnapshotBusyError extends TransportError {
  override name = "SnapshotBusyError";
}

/** The receiver answered that it did not install the snapshot; the message carries its reason. */
export class SnapshotRejectedError extends TransportError {
  override name = "SnapshotRejectedError";
}
