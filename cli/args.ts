/**
 * The CLI's argument layer, pure: find the command a command line names, parse its flags
 * strictly with node:util parseArgs, and write every --help text from the same tables.
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors";

export interface FlagSpec {
  type: "string" | "boolean";
  description: string;
  /** Applied when the flag is absent, and shown in --help. */
  default?: string;
  /** Shown in --help for a default that is worked out at run time. */
  defaultText?: string;
  /** The value's placeholder in --help: `--fee <amount>`. */
  valueName?: string;
  short?: string;
}

export interface PositionalSpec {
  name: string;
  description: string;
  optional?: boolean;
}

export interface CommandSpec {
  /** The words that name the command: ["model", "push"]. */
  path: readonly string[];
  summary: string;
  /** Paragraphs shown under the usage line. */
  description?: string;
  positionals?: readonly PositionalSpec[];
  flags?: Readonly<Record<string, FlagSpec>>;
  /** Command lines shown under Examples, each starting with `gradnet `. */
  examples?: readonly string[];
}

export type FlagValues = Record<string, string | boolean | undefined>;

export interface ParsedArgs {
  flags: FlagValues;
  positionals: string[];
  help: boolean;
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  rpc: {
    type: "string",
    valueName: "url",
    description: "the chain's JSON-RPC endpoint",
    defaultText: "$GRADNET_RPC_URL, else the devnet file's rpcUrl, else http://127.0.0.1:8545",
  },
  relayer: {
    type: "string",
    valueName: "url",
    description: "the relayer's HTTP API (model store, request views)",
    defaultText: "$GRADNET_RELAYER_URL, else the devnet file's relayerUrl, else http://127.0.0.1:8080",
  },
  key: {
    type: "string",
    valueName: "hex",
    description: "private key that signs transactions (0x + 64 hex digits)",
    defaultText: "$GRADNET_PRIVATE_KEY; on the devnet (chain 31337) Hardhat account #4, the devnet's user",
  },
  json: { type: "boolean", description: "print machine-readable JSON on stdout" },
  help: { type: "boolean", short: "h", description: "show this help" },
};

export type Resolved<C extends CommandSpec> =
  | { kind: "command"; command: C; args: string[] }
  | { kind: "group"; prefix: string[]; args: string[] }
  | { kind: "root"; args: string[] };

function isFlag(arg: string): boolean {
  return arg.startsWith("-") && arg !== "-";
}

/**
 * The command `argv` names: the longest run of leading words (after any global flags) that is a
 * command path. Global flags before the command words are kept and passed on to its parser.
 */
export function resolveCommand<C extends CommandSpec>(
  table: readonly C[],
  argv: readonly string[],
): Resolved<C> {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length && isFlag(argv[i]!)) {
    const arg = argv[i]!;
    if (arg === "--") break;
    leading.push(arg);
    const name = arg.replace(/^--?/, "").split("=")[0]!;
    const spec = GLOBAL_FLAGS[name] ?? Object.values(GLOBAL_FLAGS).find((f) => f.short === name);
    if (spec?.type === "string" && !arg.includes("=") && i + 1 < argv.length) leading.push(argv[++i]!);
    i++;
  }
  const words: string[] = [];
  while (i + words.length < argv.length && !isFlag(argv[i + words.length]!)) {
    words.push(argv[i + words.length]!);
  }
  for (let n = words.length; n > 0; n--) {
    const path = words.slice(0, n);
    const command = table.find((c) => c.path.join(" ") === path.join(" "));
    if (command !== undefined) return { kind: "command", command, args: [...leading, ...argv.slice(i + n)] };
  }
  const rest = [...leading, ...argv.slice(i + Math.min(words.length, 1))];
  if (words.length === 0) return { kind: "root", args: rest };
  if (table.some((c) => c.path.length > 1 && c.path[0] === words[0])) {
    const sub = words[1];
    if (sub !== undefined) throw new UsageError(`unknown command "${words[0]} ${sub}"`, words[0]);
    return { kind: "group", prefix: [words[0]!], args: rest };
  }
  throw new UsageError(`unknown command "${words[0]}"`, "");
}

/** Parse a command's flags and arguments. Throws UsageError naming a wrong flag or argument. */
export function parseCommandArgs(spec: CommandSpec, args: readonly string[]): ParsedArgs {
  const specs = { ...GLOBAL_FLAGS, ...(spec.flags ?? {}) };
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, f]) => [
      name,
      f.short === undefined ? { type: f.type } : { type: f.type, short: f.short },
    ]),
  );
  const command = spec.path.join(" ");
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(parseErrorMessage(err), command);
  }
  const flags: FlagValues = {};
  for (const [name, f] of Object.entries(specs)) {
    const v = parsed.values[name];
    flags[name] = typeof v === "string" || typeof v === "boolean" ? v : f.default;
  }
  const help = flags.help === true;
  const positionals = parsed.positionals;
  if (!help) {
    const declared = spec.positionals ?? [];
    const extra = positionals[declared.length];
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`, command);
    const missing = declared.find((p, k) => !p.optional && positionals[k] === undefined);
    if (missing !== undefined) throw new UsageError(`missing <${missing.name}>`, command);
  }
  return { flags, positionals, help };
}

function parseErrorMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const msg = e.message ?? String(err);
  const quoted = /'(?:-\w, )?(--?[\w-]+)/.exec(msg)?.[1];
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && quoted !== undefined) return `unknown flag ${quoted}`;
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && quoted !== undefined) {
    if (msg.includes("does not take an argument")) return `flag ${quoted} takes no value`;
    return `flag ${quoted} needs a value (write ${quoted}=<value> for one that starts with "-")`;
  }
  return msg;
}

// ------------------------------------------------------------------------------------ help

function flagLabel(name: string, f: FlagSpec): string {
  const long = `--${name}${f.type === "string" ? ` <${f.valueName ?? "value"}>` : ""}`;
  return f.short === undefined ? `    ${long}` : `-${f.short}, ${long}`;
}

function flagLines(flags: Readonly<Record<string, FlagSpec>>): string[] {
  const entries = Object.entries(flags);
  const width = Math.max(...entries.map(([n, f]) => flagLabel(n, f).length));
  return entries.map(([name, f]) => {
    const def =
      f.default !== undefined
        ? ` (default: ${f.default})`
        : f.defaultText
          ? ` (default: ${f.defaultText})`
          : "";
    return `  ${flagLabel(name, f).padEnd(width)}  ${f.description}${def}`;
  });
}

export function usageLine(spec: CommandSpec): string {
  const args = (spec.positionals ?? []).map((p) => (p.optional ? `[${p.name}]` : `<${p.name}>`));
  return ["gradnet", ...spec.path, ...args, "[flags]"].join(" ");
}

/** `gradnet <command> --help`. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: ${usageLine(spec)}`, "", spec.summary];
  if (spec.description !== undefined) lines.push("", spec.description);
  const positionals = spec.positionals ?? [];
  if (positionals.length > 0) {
    const width = Math.max(...positionals.map((p) => p.name.length + 2));
    lines.push("", "Arguments:");
    for (const p of positionals) lines.push(`  ${`<${p.name}>`.padEnd(width)}  ${p.description}`);
  }
  if (spec.flags !== undefined && Object.keys(spec.flags).length > 0)
    lines.push("", "Flags:", ...flagLines(spec.flags));
  lines.push("", "Global flags:", ...flagLines(GLOBAL_FLAGS));
  if (spec.examples !== undefined && spec.examples.length > 0)
    lines.push("", "Examples:", ...spec.examples.map((e) => `  ${e}`));
  return lines.join("\n") + "\n";
}

function commandList(table: readonly CommandSpec[]): string[] {
  const width = Math.max(...table.map((c) => c.path.join(" ").length));
  return table.map((c) => `  ${c.path.join(" ").padEnd(width)}  ${c.summary}`);
}

/** `gradnet <group> --help`: the group's subcommands. */
export function groupHelp(table: readonly CommandSpec[], prefix: readonly string[]): string {
  const members = table.filter((c) => c.path[0] === prefix[0]);
  return [
    `Usage: gradnet ${prefix.join(" ")} <command> [flags]`,
    "",
    "Commands:",
    ...commandList(members),
    "",
    `Run \`gradnet ${prefix.join(" ")} <command> --help\` for a command's flags.`,
    "",
  ].join("\n");
}

/** `gradnet --help`: every command, the global flags and the exit codes. */
export function rootHelp(table: readonly CommandSpec[], exitCodes: readonly [number, string][]): string {
  return [
    "gradnet: verifiable AI inference on an EVM chain, from the command line.",
    "",
    "Usage: gradnet <command> [flags]",
    "",
    "Commands:",
    ...commandList(table),
    "",
    "Global flags (every command takes them):",
    ...flagLines(GLOBAL_FLAGS),
    "",
    "Exit codes:",
    ...exitCodes.map(([code, meaning]) => `  ${code}  ${meaning}`),
    "",
    "Run `gradnet <command> --help` for a command's flags. docs/cli.md has examples.",
    "",
  ].join("\n");
}
