/**
 * The CLI's exit codes and its own errors. failure.ts maps any error to a message and one of
 * these codes; docs/cli.md documents them, and scripts may switch on them.
 */
import type { BaseError } from "viem";
// The SDK's errors module alone: `gradnet --help` then loads neither viem nor the ABIs.
import { GradnetError } from "../sdk/errors";

export const EXIT = {
  /** Done. */
  OK: 0,
  /** A failure the CLI did not expect (a bug, or a state it cannot explain). */
  UNEXPECTED: 1,
  /** A wrong command, flag or argument. */
  USAGE: 2,
  /** The input or the model is invalid: not ONNX, bad JSON, a tensor that does not fit the schema. */
  INVALID: 3,
  /** A service cannot be reached, or is not gradnet's: the RPC, the relayer, Redis. */
  UNREACHABLE: 4,
  /** The chain refused a transaction: a revert (with its decoded custom error), or no funds. */
  REVERTED: 5,
  /** No answer in time: the wait gave up, or the request passed its deadline unanswered. */
  TIMEOUT: 6,
  /** A node answered with an error status (invalid input, model failed); the fee was refunded. */
  REQUEST_FAILED: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A wrong command, flag or argument. `command` names the command whose --help explains it. */
export class UsageError extends GradnetError {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super("USAGE", message);
  }
}

/** A file or value the user gave that cannot be used: not ONNX, not JSON, unreadable. */
export class InvalidInputError extends GradnetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_INPUT", message, options);
  }
}

/** A service did not answer at `url`; `hint` says how to start or reach it. */
export class UnreachableError extends GradnetError {
  constructor(
    readonly service: string,
    readonly url: string,
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    const why = reasonOf(options?.cause);
    super("UNREACHABLE", `cannot reach ${service} at ${url}${why ? ` (${why})` : ""}; ${hint}`, options);
  }
}

/** An HTTP error answer from the relayer: its stable `{ error, message }` pair and status. */
export class RelayerError extends GradnetError {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(`RELAYER_${errorCode}`, `the relayer answered ${status} ${errorCode}: ${message}`);
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
]);

/** The network error code (ECONNREFUSED, …) somewhere in an error's cause chain, if any. */
export function networkCode(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e !== null && typeof e === "object" && !seen.has(e)) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) {
      for (const inner of errors) {
        const c = networkCode(inner);
        if (c !== undefined) return c;
      }
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function reasonOf(cause: unknown): string | undefined {
  const code = networkCode(cause);
  if (code !== undefined) return code === "ECONNREFUSED" ? "connection refused" : code;
  // The innermost cause says most ("bad port", "getaddrinfo ..."); the outer ones wrap it.
  let e: unknown = cause;
  let message: string | undefined;
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    message = ((e as BaseError).shortMessage ?? e.message).split("\n")[0];
    e = e.cause;
  }
  return message;
}
