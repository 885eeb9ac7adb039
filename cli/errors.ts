/**
 * The CLI's errors and the one mapping from any error to a message and an exit code.
 * docs/cli.md documents the codes; scripts may switch on them.
 */
import { BaseError, ContractFunctionRevertedError, InsufficientFundsError } from "viem";
import { GradnetError, decodeRevert } from "../sdk";

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

const INVALID_CODES = new Set([
  "INVALID_INPUT",
  "INPUT_SCHEMA",
  "TENSOR_ENCODING",
  "NON_FINITE_VALUE",
  "INVALID_ONNX_MODEL",
  "MODEL_NOT_FOUND",
  "UNKNOWN_REQUEST",
  "RELAYER_INVALID_ONNX_MODEL",
  "RELAYER_PAYLOAD_TOO_LARGE",
  "RELAYER_UNKNOWN_REQUEST",
  "RELAYER_BAD_REQUEST",
]);

const UNREACHABLE_CODES = new Set([
  "UNREACHABLE",
  "DEPLOYMENT_NOT_FOUND",
  "DEPLOYMENT_INVALID",
  "RELAYER_CHAIN_UNAVAILABLE",
]);

export interface Failure {
  exitCode: ExitCode;
  /** One or more lines for a person; the first says what went wrong. */
  message: string;
  /** A stable code for --json output. */
  code: string;
}

/** Pure: any error → what to print and which exit code to return. */
export function describeError(err: unknown): Failure {
  if (err instanceof UsageError) {
    const hint =
      err.command === undefined ? "" : `\nsee: gradnet${err.command === "" ? "" : ` ${err.command}`} --help`;
    return { exitCode: EXIT.USAGE, code: err.code, message: err.message + hint };
  }
  if (err instanceof GradnetError) {
    if (err.code === "CONFIG") return { exitCode: EXIT.USAGE, code: err.code, message: err.message };
    if (INVALID_CODES.has(err.code)) return { exitCode: EXIT.INVALID, code: err.code, message: err.message };
    if (UNREACHABLE_CODES.has(err.code))
      return { exitCode: EXIT.UNREACHABLE, code: err.code, message: err.message };
    if (err.code === "CONTRACT_REVERT" || err.code === "FEE_TOO_LOW")
      return { exitCode: EXIT.REVERTED, code: err.code, message: `the chain refused: ${err.message}` };
    if (err.code === "RESULT_TIMEOUT" || err.code === "REQUEST_EXPIRED")
      return { exitCode: EXIT.TIMEOUT, code: err.code, message: err.message };
    if (err.code === "REQUEST_FAILED")
      return { exitCode: EXIT.REQUEST_FAILED, code: err.code, message: err.message };
  }
  const revert = decodeRevert(err);
  if (revert !== undefined) {
    return {
      exitCode: EXIT.REVERTED,
      code: "CONTRACT_REVERT",
      message: `the chain refused: reverted with ${revert.name}(${revert.args.map(String).join(", ")})`,
    };
  }
  if (err instanceof BaseError) {
    const revertErr = err.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revertErr instanceof ContractFunctionRevertedError) {
      return {
        exitCode: EXIT.REVERTED,
        code: "CONTRACT_REVERT",
        message: `the chain refused: ${revertErr.reason ?? revertErr.shortMessage}`,
      };
    }
    if (err.walk((e) => e instanceof InsufficientFundsError) !== null) {
      return {
        exitCode: EXIT.REVERTED,
        code: "INSUFFICIENT_FUNDS",
        message: "the chain refused: the account cannot pay for the transaction (value plus gas)",
      };
    }
  }
  const net = networkCode(err);
  if (net !== undefined) {
    const msg = err instanceof BaseError ? err.shortMessage : String((err as Error).message ?? err);
    return { exitCode: EXIT.UNREACHABLE, code: "UNREACHABLE", message: `${msg} (${net})` };
  }
  const message = err instanceof Error ? err.message : String(err);
  return {
    exitCode: EXIT.UNEXPECTED,
    code: err instanceof GradnetError ? err.code : "UNEXPECTED",
    message: `${message}\n(an unexpected error; set GRADNET_DEBUG=1 to print its stack)`,
  };
}
