/** What a command runs with: its parsed arguments, the settings, output, and lazy connections. */
import type { ParsedArgs } from "./args";
import { connectChain, signerFor, type ChainConnection, type Signer } from "./chain";
import { jsonText } from "./output";
import type { Env, Settings } from "./settings";

export interface Io {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: Env;
  /** Resolves with the signal's name when the process is asked to stop (long-running commands). */
  untilStopped: () => Promise<string>;
}

export class Context {
  private chainPromise: Promise<ChainConnection> | undefined;

  constructor(
    readonly io: Io,
    /** "model push" */
    readonly command: string,
    readonly args: ParsedArgs,
    readonly settings: Settings,
  ) {}

  get json(): boolean {
    return this.settings.json;
  }

  /** Human output on stdout (nothing in --json mode). */
  print(text: string): void {
    if (!this.json) this.io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  /** The machine output on stdout (only in --json mode). */
  printJson(value: unknown): void {
    if (this.json) this.io.stdout.write(jsonText(value));
  }

  /** Progress and notes for people, on stderr (kept out of stdout so it stays parseable). */
  note(text: string): void {
    this.io.stderr.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  flag(name: string): string | undefined {
    const v = this.args.flags[name];
    return typeof v === "string" ? v : undefined;
  }

  bool(name: string): boolean {
    return this.args.flags[name] === true;
  }

  chain(): Promise<ChainConnection> {
    this.chainPromise ??= connectChain(this.settings);
    return this.chainPromise;
  }

  async signer(): Promise<Signer> {
    return signerFor(await this.chain(), this.settings, this.command);
  }
}
