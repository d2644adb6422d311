#!/usr/bin/env node
/**
 * The `cairn` command: `start` runs one member, `dev` a local cluster, and
 * the client commands (kv, member, status, snapshot save) talk to a running
 * cluster; snapshot status and restore work on files.
 */
import { Command, Option } from "commander";
import { ConfigError, OPTIONS, readConfigFile, readEnvironment, resolveConfig, type OptionName, type RawOptions } from "./config.js";
import { runDev } from "./dev.js";
import { runStart } from "./start.js";
import { registerClientCommands } from "./client-commands.js";
import { registerSnapshotCommands } from "./snapshot-commands.js";

const program = new Command();
program.name("cairn").description("Cairn: a strongly consistent key-value store that speaks etcd's v3 API").showHelpAfterError();

const start = program.command("start").description("run one member of a cluster");
start.addOption(new Option("--config <file>", "YAML config file (etcd's config-file keys)"));
for (const [name, option] of Object.entries(OPTIONS)) {
  if (option.kind === "boolean") start.addOption(new Option(`--${name} [bool]`, option.help));
  else start.addOption(new Option(`--${name} <value>`, option.help));
}
start.action(async (flags: Record<string, string | boolean | undefined>) => {
  const raw: RawOptions = {};
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const key = name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
    const value = flags[key];
    if (value !== undefined) raw[name] = value;
  }
  try {
    const config = resolveConfig({
      file: typeof flags.config === "string" ? readConfigFile(flags.config) : undefined,
      environment: readEnvironment(process.env),
      flags: raw,
    });
    process.exitCode = await runStart(config);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`cairn start: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
});

program.command("dev")
  .description("run a local cluster on loopback (data in ./.cairn)")
  .option("--nodes <count>", "members", "3")
  .option("--data-dir <dir>", "where the members keep their data and logs", ".cairn")
  .option("--base-port <port>", "first client port; members use port, port+1 (peer), port+2 (metrics), then +10000 each", "2379")
  .option("--heartbeat-interval <ms>", "heartbeat interval", "100")
  .option("--election-timeout <ms>", "election timeout", "1000")
  .action(async (flags: { nodes: string; dataDir: string; basePort: string; heartbeatInterval: string; electionTimeout: string }) => {
    process.exitCode = await runDev({
      nodes: Number(flags.nodes), dataDir: flags.dataDir, basePort: Number(flags.basePort),
      heartbeatIntervalMs: Number(flags.heartbeatInterval), electionTimeoutMs: Number(flags.electionTimeout),
    });
  });

registerClientCommands(program);
registerSnapshotCommands(program);

await program.parseAsync(process.argv);
