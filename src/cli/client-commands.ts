/** Client commands (kv, member, status): thin wrappers over src/client. */
import type { Command } from "commander";

export function registerClientCommands(_program: Command): void {
  // Filled in with the client.
}
