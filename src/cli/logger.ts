/** Structured logs (pino) to stderr, so stdout stays for command output. */
import { pino, destination, stdTimeFunctions, type Logger } from "pino";

export function createLogger(level: string, name: string): Logger {
  return pino({ level, base: { member: name }, timestamp: stdTimeFunctions.isoTime }, destination({ fd: 2, sync: false }));
}

/** The narrow logger interface the layers take, backed by pino. */
export function layerLogger(logger: Logger): { debug(message: string): void; info(message: string): void; warn(message: string): void; error(message: string): void } {
  return {
    debug: (message) => logger.debug(message),
    info: (message) => logger.info(message),
    warn: (message) => logger.warn(message),
    error: (message) => logger.error(message),
  };
}
