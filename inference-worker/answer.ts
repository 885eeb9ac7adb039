/**
 * What an honest node answers for one request: the one path from input bytes to the canonical
 * output and its `outputHash`. The worker's processor and the full node's verifier both call
 * `computeAnswer`, so a verifier that re-executes a request gets the worker's bytes exactly.
 */
import type { Hex } from "viem";
import { GradnetError, InputSchemaError, TensorEncodingError, decodeWire, inputHash } from "../sdk";
import { fetchBytes } from "./fetch";
import { prepareInputs, runOne, type EncodedResult, type PreparedTensor } from "./inference";
import type { LoadedModel } from "./modelCache";

/** The answer for one input: the canonical output, or the error status a node must post instead. */
export type ComputedAnswer =
  ({ status: "Success" } & EncodedResult) | { status: "InvalidInput" | "ModelFailed"; reason: string };

export interface ComputeOptions {
  /**
   * Runs prepared inputs and encodes the result. Default: one `runOne` on the model's session.
   * The worker passes its per-model `ModelRunner`, which batches concurrent requests; a batch
   * gives the same bytes as single runs.
   */
  run?: (inputs: PreparedTensor[]) => Promise<EncodedResult>;
  /** Wraps each stage, e.g. to time it. */
  time?: <T>(stage: "validate" | "run", fn: () => Promise<T>) => Promise<T>;
}

const untimed = <T>(_stage: string, fn: () => Promise<T>) => fn();

/**
 * Decode `input` (abi.encode(Tensor[])), check it against the model's schema, run the model and
 * encode the outputs canonically. An input that does not decode or does not fit the schema is
 * `InvalidInput`; a model that fails on it is `ModelFailed`. Other errors are thrown.
 */
export async function computeAnswer(
  model: LoadedModel,
  input: Hex,
  opts: ComputeOptions = {},
): Promise<ComputedAnswer> {
  const time = opts.time ?? untimed;
  const run = opts.run ?? ((inputs: PreparedTensor[]) => runOne(model.session, model.spec, inputs));
  let prepared: PreparedTensor[];
  try {
    prepared = await time("validate", async () => prepareInputs(model.spec, decodeWire(input)));
  } catch (err) {
    if (err instanceof TensorEncodingError || err instanceof InputSchemaError)
      return { status: "InvalidInput", reason: err.message };
    throw err;
  }
  try {
    return { status: "Success", ...(await time("run", () => run(prepared))) };
  } catch (err) {
    return { status: "ModelFailed", reason: `the model failed on this input: ${(err as Error).message}` };
  }
}

/** Stored input bytes that do not hash to the `inputHash` their request committed to. */
export class InputHashMismatchError extends GradnetError {
  constructor(
    readonly uri: string,
    readonly actual: Hex,
    readonly committed: Hex,
  ) {
    super("INPUT_HASH_MISMATCH", `input bytes from ${uri} hash to ${actual}, not the committed ${committed}`);
  }
}

/**
 * The input of a by-reference request: fetched from `uri` (at most `maxBytes`) and checked
 * against the sha256 the request committed to. Throws `FetchError` (whose `permanent` says
 * whether a retry can help) or `InputHashMismatchError`.
 */
export async function fetchCommittedInput(
  uri: string,
  committedHash: Hex,
  maxBytes: number,
  fetch: (uri: string, maxBytes: number) => Promise<Uint8Array> = fetchBytes,
): Promise<Hex> {
  const bytes = await fetch(uri, maxBytes);
  const actual = inputHash(bytes);
  if (actual !== committedHash) throw new InputHashMismatchError(uri, actual, committedHash);
  return `0x${Buffer.from(bytes).toString("hex")}`;
}
