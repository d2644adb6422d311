/**
 * Shared plumbing for `npm run bench -- <name> [--json] [...]`. Each benchmark
 * is a module bench/<name>.ts exporting `run(context)`. Rows are printed as a
 * table for people, or with --json as one JSON object per line for tools.
 */
export type Row = Record<string, string | number | boolean | null>;

export interface BenchContext {
  readonly json: boolean;
  /** Arguments after the benchmark's name, --json removed. */
  readonly args: readonly string[];
  /** Value of `--name value` in args, or the fallback. */
  option(name: string, fallback: string): string;
  report(row: Row): void;
  /** Prints free text (suppressed with --json so stdout stays machine-readable). */
  note(text: string): void;
}

export interface BenchModule {
  run(context: BenchContext): Promise<void>;
}

export function createContext(args: readonly string[]): BenchContext & { flush(): void } {
  const json = args.includes("--json");
  const rest = args.filter((argument) => argument !== "--json");
  const rows: Row[] = [];
  return {
    json,
    args: rest,
    option(name, fallback) {
      const at = rest.indexOf(`--${name}`);
      return at >= 0 && at + 1 < rest.length ? rest[at + 1] : fallback;
    },
    report(row) {
      if (json) process.stdout.write(JSON.stringify(row) + "\n");
      else rows.push(row);
    },
    note(text) {
      if (!json) process.stdout.write(text + "\n");
    },
    flush() {
      if (json || rows.length === 0) return;
      process.stdout.write(formatTable(rows) + "\n");
      rows.length = 0;
    },
  };
}

/** A Markdown table, so the output can be pasted into docs/benchmarks.md as it is. */
export function formatTable(rows: readonly Row[]): string {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: Row[string] | undefined): string =>
    value === undefined || value === null ? "" : typeof value === "number" ? formatNumber(value) : String(value);
  const lines = [
    `| ${columns.join(" | ")} |`,
    `| ${columns.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${columns.map((column) => cell(row[column])).join(" | ")} |`),
  ];
  return lines.join("\n");
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toPrecision(3);
}
