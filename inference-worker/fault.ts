/**
 * A testing aid: `FAULT_CORRUPT_OUTPUTS=true` makes a worker answer wrong on purpose, so that the
 * verifiers' challenge, the committee's vote and the slashing can be seen working. Never set it
 * on a node that holds real stake: a verifier will challenge every such answer and win.
 */
import type { Hex } from "viem";
import { DTYPE_CODE, decodeWire, encodeWire, outputHash, type WireTensor } from "../sdk";
import type { EncodedResult } from "./inference";

const BOUNDS: Partial<Record<number, readonly [bigint, bigint]>> = {
  [DTYPE_CODE.bool]: [0n, 1n],
  [DTYPE_CODE.int32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [DTYPE_CODE.int64]: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** A value one step away from `v` that still fits the dtype. */
function nudge(dtype: number, v: bigint): bigint {
  const max = BOUNDS[dtype]?.[1];
  return max !== undefined && v >= max ? v - 1n : v + 1n;
}

/**
 * The same output made wrong, deterministically: the first element of the first tensor (in the
 * canonical order) moves one step (a fixed-point float by one unit of its last decimal, an
 * integer by one, a bool flips, a string gets a "!" appended), and the bytes are re-encoded and
 * hashed. The result is self-consistent (`outputHash == keccak256(output)`), so the hub accepts
 * it, and it differs from what an honest node computes.
 */
export function corruptOutput(output: Hex): EncodedResult {
  const tensors = decodeWire(output);
  const at = tensors.findIndex((t) => t.values.length > 0 || t.strings.length > 0);
  let corrupted: WireTensor[];
  if (at === -1) {
    // Nothing to change in place (every tensor is empty): add a tensor no honest node outputs.
    corrupted = [
      ...tensors,
      { name: "\u{10FFFF}fault", dtype: DTYPE_CODE.int64, decimals: 0, shape: [], values: [1n], strings: [] },
    ];
  } else {
    corrupted = tensors.map((t, i) => {
      if (i !== at) return t;
      if (t.values.length > 0) return { ...t, values: [nudge(t.dtype, t.values[0]!), ...t.values.slice(1)] };
      return { ...t, strings: [`${t.strings[0]!}!`, ...t.strings.slice(1)] };
    });
  }
  const bytes = encodeWire(corrupted);
  return { output: bytes, outputHash: outputHash(bytes) };
}
