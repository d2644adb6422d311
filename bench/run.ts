/**
 * Entry point of `npm run bench -- <name...> [--json]`. With no name it lists
 * the benchmarks. Each name maps to bench/<name>.ts.
 */
import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createContext, type BenchModule } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((file) => file.endsWith(".js") && !["run.js", "common.js"].includes(file))
  .map((file) => file.slice(0, -3))
  .sort();

const args = process.argv.slice(2);
const name = args.find((argument) => !argument.startsWith("-"));
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${available.join("|")}> [--json]\n`);
  process.exit(name ? 2 : 0);
}
const context = createContext(args.filter((argument) => argument !== name));
const module = (await import(`./${name}.js`)) as BenchModule;
context.note(`# bench ${name} — node ${process.version}, ${new Date().toISOString()}`);
await module.run(context);
context.flush();
