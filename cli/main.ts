/**
 * `gradnet`: the command-line tool. `npx gradnet <command>` (bin/gradnet.cjs) or
 * `npm run gradnet -- <command>`; `gradnet --help` lists the commands, docs/cli.md explains them.
 */
import { commandHelp, groupHelp, parseCommandArgs, resolveCommand, rootHelp } from "./args";
import { COMMANDS } from "./commands";
import type { Io } from "./context";
import { EXIT, type ExitCode } from "./errors";
import { version } from "../package.json";

/** The exit codes, as --help and docs/cli.md list them. */
export const EXIT_CODES: readonly [number, string][] = [
  [EXIT.OK, "done"],
  [EXIT.UNEXPECTED, "unexpected failure (a bug, or a state the CLI cannot explain)"],
  [EXIT.USAGE, "wrong command, flag or argument"],
  [
    EXIT.INVALID,
    "invalid input or model: not ONNX, bad JSON, a tensor that does not fit the schema, unknown model or request",
  ],
  [EXIT.UNREACHABLE, "a service does not answer, or is not gradnet's: RPC, relayer, Redis"],
  [EXIT.REVERTED, "the chain refused a transaction (the revert's custom error is printed)"],
  [EXIT.TIMEOUT, "no answer in time (--timeout passed, or the request's deadline)"],
  [EXIT.REQUEST_FAILED, "a node answered with an error status (e.g. invalid input); the fee was refunded"],
];

/** Run one command line; resolves with the exit code. Never throws. */
export async function main(argv: readonly string[], io: Io): Promise<ExitCode> {
  let json = argv.includes("--json");
  let name: string | undefined;
  try {
    const resolved = resolveCommand(COMMANDS, argv);
    const wantsHelp = resolved.args.includes("--help") || resolved.args.includes("-h");
    if (resolved.kind === "root") {
      if (resolved.args.includes("--version")) {
        io.stdout.write(`gradnet ${version}\n`);
        return EXIT.OK;
      }
      (wantsHelp ? io.stdout : io.stderr).write(rootHelp(COMMANDS, EXIT_CODES));
      return wantsHelp ? EXIT.OK : EXIT.USAGE;
    }
    if (resolved.kind === "group") {
      (wantsHelp ? io.stdout : io.stderr).write(groupHelp(COMMANDS, resolved.prefix));
      return wantsHelp ? EXIT.OK : EXIT.USAGE;
    }
    const { command } = resolved;
    name = command.path.join(" ");
    const args = parseCommandArgs(command, resolved.args);
    if (args.help) {
      io.stdout.write(commandHelp(command));
      return EXIT.OK;
    }
    json = args.flags.json === true;
    // Loaded here, not at the top: --help and usage errors need neither viem nor the SDK.
    const { readDevnetFile, resolveSettings } = await import("./settings");
    const { Context } = await import("./context");
    const settings = resolveSettings(args.flags, io.env, readDevnetFile(io.env));
    await command.run(new Context(io, name, args, settings));
    return EXIT.OK;
  } catch (err) {
    const { describeError } = await import("./failure");
    const failure = describeError(err);
    if (json) {
      io.stderr.write(
        JSON.stringify({ error: failure.code, exitCode: failure.exitCode, message: failure.message }) + "\n",
      );
    } else {
      io.stderr.write(`gradnet${name === undefined ? "" : ` ${name}`}: ${failure.message}\n`);
    }
    if (io.env.GRADNET_DEBUG && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return failure.exitCode;
  }
}

/** The process entry: real stdio, environment and signals; exits with the command's code. */
export function runCli(argv: readonly string[]): void {
  const io: Io = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    untilStopped: () =>
      new Promise((resolve) => {
        process.once("SIGINT", () => resolve("SIGINT"));
        process.once("SIGTERM", () => resolve("SIGTERM"));
      }),
  };
  main(argv, io).then((code) => process.exit(code));
}

if (require.main === module) runCli(process.argv.slice(2));
