/**
 * The pure core of inference: check an input against the model's schema, turn it into
 * onnxruntime tensors, run one request or a batch of them in one `session.run`, and encode
 * the outputs canonically with their hash. Verifiers run exactly this code.
 */
import * as ort from "onnxruntime-node";
import type { Hex } from "viem";
import {
  DTYPE_CODE,
  InputSchemaError,
  MAX_DECIMALS,
  dtypeName,
  encodeOutput,
  fromFixedPoint,
  type DType,
  type NamedTensor,
  type WireTensor,
} from "../sdk";

/** One named input or output as the registry describes it; -1 marks a dynamic axis. */
export interface TensorSpec {
  name: string;
  dtype: number;
  shape: readonly number[];
}

export interface ModelSpec {
  modelId: Hex;
  decimals: number;
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
}

/** Session options every honest worker uses, so the same model and input give the same hash. */
export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  executionProviders: ["cpu"],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: "disabled",
  executionMode: "sequential",
};

type OrtData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | string[];

/** An input ready for onnxruntime: data in ONNX's own element type. */
export interface PreparedTensor {
  name: string;
  type: "float32" | "float64" | "int32" | "int64" | "bool" | "string";
  dims: number[];
  data: OrtData;
}

const ORT_TYPE: Record<DType, PreparedTensor["type"]> = {
  float32: "float32",
  float64: "float64",
  int32: "int32",
  int64: "int64",
  bool: "bool",
  string: "string",
};

/**
 * Check decoded input tensors against the schema and convert them. Throws InputSchemaError
 * naming the tensor and the reason. Fixed-point floats become `fl32(value / 10^decimals)`.
 */
export function prepareInputs(spec: ModelSpec, inputs: readonly WireTensor[]): PreparedTensor[] {
  const byName = new Map(inputs.map((t) => [t.name, t]));
  for (const t of inputs) {
    if (!spec.inputs.some((s) => s.name === t.name)) {
      throw new InputSchemaError(
        t.name,
        `the model has no input of this name (inputs: ${spec.inputs.map((s) => s.name).join(", ")})`,
      );
    }
  }
  return spec.inputs.map((s) => {
    const t = byName.get(s.name);
    if (t === undefined) throw new InputSchemaError(s.name, "missing");
    if (t.dtype !== s.dtype) {
      throw new InputSchemaError(
        s.name,
        `dtype ${safeDtype(t.dtype)} given, the model takes ${safeDtype(s.dtype)}`,
      );
    }
    if (t.shape.length !== s.shape.length) {
      throw new InputSchemaError(
        s.name,
        `shape [${t.shape.join(", ")}] has rank ${t.shape.length}, the model takes [${s.shape.join(", ")}]`,
      );
    }
    t.shape.forEach((d, i) => {
      const want = s.shape[i]!;
      if (want === -1 ? d < 1 : d !== want) {
        throw new InputSchemaError(
          s.name,
          `shape [${t.shape.join(", ")}] does not fit [${s.shape.join(", ")}] at axis ${i}`,
        );
      }
    });
    return convert(s.name, dtypeName(s.dtype), t);
  });
}

function safeDtype(code: number): string {
  try {
    return dtypeName(code);
  } catch {
    return `code ${code}`;
  }
}

function convert(name: string, dtype: DType, t: WireTensor): PreparedTensor {
  const dims = [...t.shape];
  const n = t.values.length;
  const checkRange = (min: bigint, max: bigint) =>
    t.values.forEach((v, i) => {
      if (v < min || v > max) throw new InputSchemaError(name, `element ${i} (${v}) does not fit ${dtype}`);
    });
  switch (dtype) {
    case "float32":
    case "float64": {
      if (t.decimals > MAX_DECIMALS)
        throw new InputSchemaError(name, `decimals ${t.decimals} above ${MAX_DECIMALS}`);
      const data = dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
      t.values.forEach((v, i) => {
        const x = fromFixedPoint(v, t.decimals);
        if (!Number.isFinite(x)) throw new InputSchemaError(name, `element ${i} is not finite as ${dtype}`);
        data[i] = x;
        if (!Number.isFinite(data[i]!)) throw new InputSchemaError(name, `element ${i} overflows ${dtype}`);
      });
      return { name, type: ORT_TYPE[dtype], dims, data };
    }
    case "int64":
      checkRange(-(2n ** 63n), 2n ** 63n - 1n);
      return { name, type: "int64", dims, data: BigInt64Array.from(t.values) };
    case "int32":
      checkRange(-(2n ** 31n), 2n ** 31n - 1n);
      return { name, type: "int32", dims, data: Int32Array.from(t.values, Number) };
    case "bool":
      checkRange(0n, 1n);
      return { name, type: "bool", dims, data: Uint8Array.from(t.values, Number) };
    case "string":
      return { name, type: "string", dims, data: [...t.strings] };
  }
}

/** A model can run requests together when every input and output has a dynamic first axis. */
export function isBatchable(spec: ModelSpec): boolean {
  const dynamicFirst = (s: TensorSpec) => s.shape.length > 0 && s.shape[0] === -1;
  return spec.inputs.every(dynamicFirst) && spec.outputs.every(dynamicFirst);
}

/** Concatenate prepared requests along axis 0. Returns the feeds and each request's rows. */
export function concatBatch(items: readonly PreparedTensor[][]): { feeds: PreparedTensor[]; rows: number[] } {
  const first = items[0];
  if (first === undefined) throw new RangeError("empty batch");
  const rows = items.map((inputs) => inputs[0]!.dims[0]!);
  const feeds = first.map((t, k) => {
    const parts = items.map((inputs) => inputs[k]!);
    for (const p of parts) {
      if (p.dims.slice(1).join() !== t.dims.slice(1).join()) {
        throw new RangeError(`input ${t.name}: inner shapes differ within the batch`);
      }
    }
    const dims = [parts.reduce((s, p) => s + p.dims[0]!, 0), ...t.dims.slice(1)];
    return { name: t.name, type: t.type, dims, data: concatData(parts.map((p) => p.data)) };
  });
  return { feeds, rows };
}

function concatData(parts: OrtData[]): OrtData {
  const first = parts[0]!;
  if (Array.isArray(first)) return (parts as string[][]).flat();
  const total = parts.reduce((s, p) => s + p.length, 0);
  const Ctor = first.constructor as { new (n: number): Exclude<OrtData, string[]> };
  const out = new Ctor(total);
  let at = 0;
  for (const p of parts as Exclude<OrtData, string[]>[]) {
    (out as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(p, at);
    at += p.length;
  }
  return out;
}

export function toFeeds(tensors: readonly PreparedTensor[]): Record<string, ort.Tensor> {
  return Object.fromEntries(tensors.map((t) => [t.name, new ort.Tensor(t.type, t.data, t.dims)]));
}

const DTYPE_BY_ORT: Record<string, DType> = {
  float32: "float32",
  float64: "float64",
  int32: "int32",
  int64: "int64",
  bool: "bool",
  string: "string",
};

/** onnxruntime outputs → named tensors (in the model's output order). */
export function fromOrtOutputs(
  outputs: Record<string, OutputTensor>,
  names: readonly string[],
): NamedTensor[] {
  return names.map((name) => {
    const t = outputs[name];
    if (t === undefined) throw new Error(`the model produced no output "${name}"`);
    const dtype = DTYPE_BY_ORT[t.type];
    if (dtype === undefined)
      throw new Error(`output "${name}" has type ${t.type}, which gradnet cannot encode`);
    const data =
      dtype === "bool" ? Array.from(t.data as Uint8Array, (v) => v !== 0) : (t.data as NamedTensor["data"]);
    return { name, dtype, shape: [...t.dims], data };
  });
}

/** Split batched outputs back into each request's rows. */
export function splitOutputs(outputs: readonly NamedTensor[], rows: readonly number[]): NamedTensor[][] {
  const result: NamedTensor[][] = rows.map(() => []);
  for (const t of outputs) {
    const total = t.shape[0]!;
    const rowSize = total === 0 ? 0 : t.data.length / total;
    let at = 0;
    rows.forEach((r, i) => {
      const data = Array.prototype.slice.call(
        t.data,
        at * rowSize,
        (at + r) * rowSize,
      ) as NamedTensor["data"];
      result[i]!.push({ name: t.name, dtype: t.dtype, shape: [r, ...t.shape.slice(1)], data });
      at += r;
    });
  }
  return result;
}

/** An output tensor as onnxruntime gives it (an `ort.Tensor` is one). */
export interface OutputTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

/**
 * What runs a model: onnxruntime in this thread (`localSession`) or in a worker thread
 * (`ThreadSession`, what the worker uses, since onnxruntime-node's `run` holds the event loop).
 */
export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: readonly PreparedTensor[]): Promise<Record<string, OutputTensor>>;
}

export function localSession(session: ort.InferenceSession): ModelSession {
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    run: (feeds) => session.run(toFeeds(feeds)),
  };
}

export interface EncodedResult {
  output: Hex;
  outputHash: Hex;
}

/** Run one prepared input and encode the result canonically. */
export async function runOne(
  session: ModelSession,
  spec: ModelSpec,
  inputs: readonly PreparedTensor[],
): Promise<EncodedResult> {
  const out = await session.run(inputs);
  return encodeOutput(fromOrtOutputs(out, session.outputNames), spec.decimals);
}

/** Run several prepared inputs in one `session.run` (the model must be batchable). */
export async function runBatch(
  session: ModelSession,
  spec: ModelSpec,
  items: readonly PreparedTensor[][],
): Promise<EncodedResult[]> {
  if (items.length === 1) return [await runOne(session, spec, items[0]!)];
  const { feeds, rows } = concatBatch(items);
  const out = await session.run(feeds);
  return splitOutputs(fromOrtOutputs(out, session.outputNames), rows).map((tensors) =>
    encodeOutput(tensors, spec.decimals),
  );
}

/** Schema from the registry's ABI form (int64 dims as bigints) to plain numbers. */
export function specFromRegistry(
  modelId: Hex,
  decimals: number,
  schema: {
    inputs: readonly { name: string; dtype: number; shape: readonly bigint[] }[];
    outputs: readonly { name: string; dtype: number; shape: readonly bigint[] }[];
  },
): ModelSpec {
  const conv = (s: { name: string; dtype: number; shape: readonly bigint[] }) => ({
    name: s.name,
    dtype: s.dtype,
    shape: s.shape.map(Number),
  });
  return { modelId, decimals, inputs: schema.inputs.map(conv), outputs: schema.outputs.map(conv) };
}

export { DTYPE_CODE };
