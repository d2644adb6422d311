/**
 * The scenario script format: one command per line, each optionally followed
 * by its recorded output. A command's output starts with a line `----` and
 * runs until the next blank line; lines starting with `#` and blank lines
 * between commands are kept as they are, so a rewritten golden file reads the
 * same as the script a person wrote.
 *
 *     # the leader brings a lagging follower into line
 *     campaign 1
 *     ----
 *     state 1: pre-candidate term=1 leader=0
 *
 * Arguments are words: bare (`1`, `|`, `drop`) or named (`type=App`,
 * `voters=(1,2,3)`).
 */
export const OUTPUT_SEPARATOR = "----";
/** A script longer than this is a mistake, not a scenario. */
export const SCRIPT_LINES_MAX = 10_000;

export class ScriptSyntaxError extends Error {
  override name = "ScriptSyntaxError";
  constructor(message: string, readonly lineNumber: number, options?: { cause?: unknown }) {
    super(`line ${lineNumber}: ${message}`, options);
  }
}

export interface Argument {
  /** The name of a named argument, or the word itself for a bare one. */
  readonly key: string;
  /** Values of a named argument (`a=(1,2)` gives ["1","2"]); empty for a bare word. */
  readonly values: readonly string[];
  readonly named: boolean;
}

export interface Command {
  readonly name: string;
  readonly arguments: readonly Argument[];
  readonly lineNumber: number;
  readonly text: string;
}

export type ScriptItem =
  | { readonly kind: "text"; readonly line: string }
  | { readonly kind: "command"; readonly command: Command; readonly recordedOutput: readonly string[] | null };

export function parseCommandLine(text: string, lineNumber: number): Command {
  const words = text.trim().split(/\s+/).filter((word) => word.length > 0);
  if (words.length === 0) throw new ScriptSyntaxError("empty command", lineNumber);
  const [name, ...rest] = words;
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new ScriptSyntaxError(`bad command name "${name}"`, lineNumber);
  return { name, arguments: rest.map((word) => parseArgument(word, lineNumber)), lineNumber, text: text.trim() };
}

function parseArgument(word: string, lineNumber: number): Argument {
  const equals = word.indexOf("=");
  if (equals < 0) return { key: word, values: [], named: false };
  const key = word.slice(0, equals);
  const rawValue = word.slice(equals + 1);
  if (key.length === 0) throw new ScriptSyntaxError(`argument "${word}" has no name`, lineNumber);
  if (rawValue.startsWith("(")) {
    if (!rawValue.endsWith(")")) throw new ScriptSyntaxError(`unclosed list in "${word}"`, lineNumber);
    const inner = rawValue.slice(1, -1).trim();
    const values = inner.length === 0 ? [] : inner.split(",").map((value) => value.trim());
    if (values.some((value) => value.length === 0)) throw new ScriptSyntaxError(`empty list element in "${word}"`, lineNumber);
    return { key, values, named: true };
  }
  if (rawValue.length === 0) throw new ScriptSyntaxError(`argument "${word}" has no value`, lineNumber);
  return { key, values: [rawValue], named: true };
}

export function parseScript(text: string): ScriptItem[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length > SCRIPT_LINES_MAX) throw new ScriptSyntaxError(`script longer than ${SCRIPT_LINES_MAX} lines`, SCRIPT_LINES_MAX);
  const items: ScriptItem[] = [];
  let position = 0;
  while (position < lines.length) {
    const line = lines[position];
    const lineNumber = position + 1;
    position++;
    if (line.trim() === "" || line.trimStart().startsWith("#")) {
      items.push({ kind: "text", line });
      continue;
    }
    if (line === OUTPUT_SEPARATOR) throw new ScriptSyntaxError("output separator without a command above it", lineNumber);
    const command = parseCommandLine(line, lineNumber);
    let recordedOutput: string[] | null = null;
    if (position < lines.length && lines[position] === OUTPUT_SEPARATOR) {
      position++;
      recordedOutput = [];
      while (position < lines.length && lines[position].trim() !== "") {
        recordedOutput.push(lines[position]);
        position++;
      }
    }
    items.push({ kind: "command", command, recordedOutput });
  }
  return items;
}

/** Renders a script with the given output for each command (in order), the inverse of parseScript. */
export function formatScript(items: readonly ScriptItem[], outputs: ReadonlyMap<Command, readonly string[]>): string {
  const lines: string[] = [];
  for (const [position, item] of items.entries()) {
    if (item.kind === "text") {
      lines.push(item.line);
      continue;
    }
    lines.push(item.command.text);
    const output = outputs.get(item.command) ?? item.recordedOutput;
    if (output === null) continue;
    lines.push(OUTPUT_SEPARATOR);
    for (const line of output) {
      if (line.trim() === "") throw new Error(`output of line ${item.command.lineNumber} contains a blank line, which would end the block`);
      lines.push(line);
    }
    // An output block ends at a blank line; add one if the script had none.
    const next = items[position + 1];
    if (next !== undefined && !(next.kind === "text" && next.line.trim() === "")) lines.push("");
  }
  return lines.join("\n") + "\n";
}
