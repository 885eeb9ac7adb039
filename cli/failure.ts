/** The one mapping from any error to what the CLI prints and the exit code it returns. */
import { BaseError, ContractFunctionRevertedError, InsufficientFundsError } from "viem";
import { GradnetError, decodeRevert } from "../sdk";
import { EXIT, UsageError, networkCode, type ExitCode } from "./errors";

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
