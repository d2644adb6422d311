/**
 * The logging the transport needs, shaped so a pino logger fits as is
 * (`logger.warn({ peer }, "text")`); tests pass a recorder.
 */
export interface TransportLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const silentLogger: TransportLogger = {
  info() {},
  warn() {},
  error() {},
};
