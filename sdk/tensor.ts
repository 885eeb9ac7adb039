/**
 * The canonical tensor codec. Workers, verifiers, the SDK and the contracts agree on these bytes;
 * docs/protocol.md states the rules so that another implementation reproduces every hash.
 *
 * Wire form: `abi.encode(Tensor[])` with
 *   struct Tensor { string name; uint8 dtype; uint8 decimals; uint32[] shape; int256[] values; string[] strings; }
 */
import { createHash } from "node:crypto";
import jsSha3 from "js-sha3";
import type { Hex } from "viem";
import { NonFiniteValueError, TensorEncodingError } from "./errors";
import { decodeTensorArray, encodeTensorArray } from "./tensorAbi";

/** Element types, by ONNX's own TensorProto.DataType numbers. */
export const DTYPE_CODE = {
  float32: 1,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float64: 11,
} as const;
export type DType = keyof typeof DTYPE_CODE;

const DTYPE_BY_CODE = new Map<number, DType>(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));

export const MAX_DECIMALS = 18;

/** A tensor as programs hold it. Floats are numbers; int64 are bigints (numbers accepted). */
export interface NamedTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  data: ArrayLike<number> | ArrayLike<bigint> | readonly string[] | readonly boolean[];
}

/** A tensor in its on-chain form: numeric data as integers, floats fixed-point. */
export interface WireTensor {
  name: string;
  dtype: number;
  decimals: number;
  shape: readonly number[];
  values: readonly bigint[];
  strings: readonly string[];
}

export const TENSOR_ABI = [
  {
    type: "tuple[]",
    components: [
      { name: "name", type: "string" },
      { name: "dtype", type: "uint8" },
      { name: "decimals", type: "uint8" },
      { name: "shape", type: "uint32[]" },
      { name: "values", type: "int256[]" },
      { name: "strings", type: "string[]" },
    ],
  },
] as const;

const INT256_MIN = -(1n << 255n);
const INT256_MAX = (1n << 255n) - 1n;
const UINT32_MAX = 2 ** 32 - 1;

export function dtypeName(code: number): DType {
  const name = DTYPE_BY_CODE.get(code);
  if (name === undefined) throw new TensorEncodingError(`unsupported dtype code ${code}`);
  return name;
}

export function isFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float64";
}

/** Number of elements a shape holds; a scalar (empty shape) holds one. */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/**
 * `round_half_even(x * 10^decimals)`, computed exactly: the double `x` is a rational
 * `m * 2^e`, so the product and the rounding need no floating point at all.
 */
export function toFixedPoint(x: number, decimals: number, tensorName = "", index = 0): bigint {
  if (!Number.isFinite(x)) throw new NonFiniteValueError(tensorName, index, x);
  checkDecimals(decimals, tensorName);
  if (x === 0) return 0n;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const exponentBits = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exponent: number;
  if (exponentBits === 0) {
    exponent = -1074; // subnormal
  } else {
    mantissa |= 1n << 52n;
    exponent = exponentBits - 1075;
  }
  const scaled = mantissa * 10n ** BigInt(decimals);
  let result: bigint;
  if (exponent >= 0) {
    result = scaled << BigInt(exponent);
  } else {
    const denominator = 1n << BigInt(-exponent);
    result = scaled / denominator;
    const twice = 2n * (scaled % denominator);
    if (twice > denominator || (twice === denominator && (result & 1n) === 1n)) result += 1n;
  }
  return negative ? -result : result;
}

/** The double nearest to `value / 10^decimals`. */
export function fromFixedPoint(value: bigint, decimals: number): number {
  checkDecimals(decimals);
  return Number(value) / 10 ** decimals;
}

function checkDecimals(decimals: number, tensorName?: string): void {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_DECIMALS) {
    throw new TensorEncodingError(
      `decimals must be an integer in 0..${MAX_DECIMALS}, got ${decimals}`,
      tensorName,
    );
  }
}

function checkShape(t: { name: string; shape: readonly number[] }, length: number): void {
  for (const d of t.shape) {
    if (!Number.isInteger(d) || d < 0 || d > UINT32_MAX) {
      throw new TensorEncodingError(`shape [${t.shape.join(", ")}] has an invalid dimension ${d}`, t.name);
    }
  }
  const expected = elementCount(t.shape);
  if (expected !== length) {
    throw new TensorEncodingError(
      `shape [${t.shape.join(", ")}] holds ${expected} elements, data has ${length}`,
      t.name,
    );
  }
}

/** Put one tensor into wire form. Floats become fixed-point with `decimals`. */
export function toWire(t: NamedTensor, decimals: number): WireTensor {
  if (t.name.length === 0) throw new TensorEncodingError("a tensor needs a name");
  const code = DTYPE_CODE[t.dtype];
  if (code === undefined) throw new TensorEncodingError(`unsupported dtype ${String(t.dtype)}`, t.name);
  const data = Array.from(t.data as ArrayLike<unknown>);
  checkShape(t, data.length);
  const base = { name: t.name, dtype: code, shape: [...t.shape] };
  if (t.dtype === "string") {
    const strings = data.map((v, i) => {
      if (typeof v !== "string") throw new TensorEncodingError(`element ${i} is not a string`, t.name);
      return v;
    });
    return { ...base, decimals: 0, values: [], strings };
  }
  if (isFloat(t.dtype)) {
    checkDecimals(decimals, t.name);
    const values = data.map((v, i) => {
      if (typeof v !== "number") throw new TensorEncodingError(`element ${i} is not a number`, t.name);
      return toFixedPoint(v, decimals, t.name, i);
    });
    return { ...base, decimals, values, strings: [] };
  }
  const values = data.map((v, i) => toInteger(v, t, i));
  return { ...base, decimals: 0, values, strings: [] };
}

function toInteger(v: unknown, t: NamedTensor, i: number): bigint {
  if (t.dtype === "bool") {
    if (typeof v === "boolean") return v ? 1n : 0n;
    if (v === 0 || v === 1 || v === 0n || v === 1n) return BigInt(v);
    throw new TensorEncodingError(`element ${i} is not a boolean`, t.name);
  }
  let b: bigint;
  if (typeof v === "bigint") b = v;
  else if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
  else if (typeof v === "number" && !Number.isFinite(v)) throw new NonFiniteValueError(t.name, i, v);
  else throw new TensorEncodingError(`element ${i} (${String(v)}) is not an integer`, t.name);
  const [min, max] = t.dtype === "int32" ? [-(2n ** 31n), 2n ** 31n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
  if (b < min || b > max)
    throw new TensorEncodingError(`element ${i} (${b}) does not fit ${t.dtype}`, t.name);
  return b;
}

/** Read one wire tensor back. Floats come back as doubles (value / 10^decimals). */
export function fromWire(w: WireTensor): NamedTensor {
  const dtype = dtypeName(w.dtype);
  checkWire(w);
  let data: NamedTensor["data"];
  if (dtype === "string") data = [...w.strings];
  else if (isFloat(dtype)) data = w.values.map((v) => fromFixedPoint(v, w.decimals));
  else if (dtype === "bool") data = w.values.map((v) => v !== 0n);
  else if (dtype === "int32") data = w.values.map((v) => Number(v));
  else data = [...w.values];
  return { name: w.name, dtype, shape: [...w.shape], data };
}

function checkWire(w: WireTensor): void {
  const dtype = dtypeName(w.dtype);
  if (w.name.length === 0) throw new TensorEncodingError("a tensor needs a name");
  if (dtype === "string") {
    if (w.values.length !== 0)
      throw new TensorEncodingError("a string tensor carries no numeric values", w.name);
    checkShape(w, w.strings.length);
  } else {
    if (w.strings.length !== 0) throw new TensorEncodingError("a numeric tensor carries no strings", w.name);
    checkShape(w, w.values.length);
  }
  if (!isFloat(dtype) && w.decimals !== 0) {
    throw new TensorEncodingError(`decimals must be 0 for ${dtype}, got ${w.decimals}`, w.name);
  }
  checkDecimals(w.decimals, w.name);
  for (const v of w.values) {
    if (v < INT256_MIN || v > INT256_MAX)
      throw new TensorEncodingError("a value does not fit int256", w.name);
  }
}

/** Names compare by their UTF-8 bytes, so every implementation sorts the same way. */
export function compareNames(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

const utf8 = new TextEncoder();

function checkUniqueNames(tensors: readonly { name: string }[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new TensorEncodingError("the name appears twice", t.name);
    seen.add(t.name);
  }
}

/** abi.encode(Tensor[]) of wire tensors, in the order given. */
export function encodeWire(tensors: readonly WireTensor[]): Hex {
  checkUniqueNames(tensors);
  tensors.forEach(checkWire);
  return encodeTensorArray(tensors);
}

/**
 * The canonical encoding of named tensors: sorted by name, floats fixed-point with `decimals`.
 * Use it for model inputs (with the input's own decimals) and outputs (with the model's).
 */
export function encodeTensors(tensors: readonly NamedTensor[], decimals: number): Hex {
  checkUniqueNames(tensors);
  const wire = tensors.map((t) => toWire(t, decimals)).sort((a, b) => compareNames(a.name, b.name));
  return encodeWire(wire);
}

/** Decode and check `abi.encode(Tensor[])` bytes. Malformed bytes throw TensorEncodingError. */
export function decodeWire(bytes: Hex): WireTensor[] {
  const tensors = decodeTensorArray(bytes);
  checkUniqueNames(tensors);
  tensors.forEach(checkWire);
  return tensors;
}

/** Decode canonical bytes into named tensors (floats as doubles). */
export function decodeTensors(bytes: Hex): NamedTensor[] {
  return decodeWire(bytes).map(fromWire);
}

/** The output hash the hub checks: keccak256 of the canonical output bytes. */
export function outputHash(output: Hex): Hex {
  return `0x${jsSha3.keccak256(Buffer.from(output.slice(2), "hex"))}`;
}

/** sha256 of bytes, 0x-prefixed: model ids, input hashes and the model store's keys. */
export function sha256Hex(data: Hex | Uint8Array): Hex {
  const bytes = typeof data === "string" ? Buffer.from(data.slice(2), "hex") : data;
  return `0x${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The input hash a request commits to: sha256 of the input bytes, inline or stored. */
export const inputHash = sha256Hex;

/** Canonical output bytes and their hash, in one step. */
export function encodeOutput(
  tensors: readonly NamedTensor[],
  decimals: number,
): { output: Hex; outputHash: Hex } {
  const output = encodeTensors(tensors, decimals);
  return { output, outputHash: outputHash(output) };
}
