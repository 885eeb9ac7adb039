/**
 * Minimal, dependency-light ONNX graph builder used to produce gradnet's demo models.
 *
 * Everything here is a pure function of its arguments: no timestamps, no randomness other than the
 * explicitly seeded PRNG, so serialised models are byte-for-byte reproducible.
 */
import { onnx } from "onnx-proto";

export const IR_VERSION = 8;
export const OPSET_VERSION = 17;
export const PRODUCER_NAME = "gradnet";

/** ONNX TensorProto data type numbers used by the demos. */
export const DataType = {
  FLOAT: onnx.TensorProto.DataType.FLOAT, // 1
  INT64: onnx.TensorProto.DataType.INT64, // 7
} as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/** A tensor dimension: a fixed size, or a symbolic name (`dim_param`, e.g. "batch"). */
export type Dim = number | string;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkDims(dims: readonly number[], count: number, name: string): void {
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`tensor ${name}: bad dim ${d}`);
  }
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== count) {
    throw new Error(`tensor ${name}: dims [${dims.join(",")}] need ${expected} values, got ${count}`);
  }
}

/** Little-endian bytes of a float32 array (ONNX raw_data is always little-endian). */
function float32Bytes(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return out;
}

/** Float32 initializer stored as raw_data (fast even for millions of weights). */
export function floatTensor(
  name: string,
  dims: readonly number[],
  values: Float32Array | readonly number[],
): onnx.ITensorProto {
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  checkDims(dims, data.length, name);
  return {
    name,
    dataType: DataType.FLOAT,
    dims: [...dims],
    rawData: float32Bytes(data),
  };
}

/** Int64 initializer stored as raw_data. */
export function int64Tensor(
  name: string,
  dims: readonly number[],
  values: BigInt64Array | readonly (number | bigint)[],
): onnx.ITensorProto {
  const count = values.length;
  checkDims(dims, count, name);
  const out = new Uint8Array(count * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const v = values[i] as number | bigint;
    if (typeof v === "number" && !Number.isSafeInteger(v)) throw new Error(`tensor ${name}: ${v} not an int`);
    view.setBigInt64(i * 8, BigInt(v), true);
  }
  return { name, dataType: DataType.INT64, dims: [...dims], rawData: out };
}

export type AttributeValue = number | string | readonly number[] | { float: number } | { floats: number[] };

/**
 * Build an attribute. Integers (and integer arrays) become INT/INTS, strings become STRING; wrap a
 * value as `{ float }` / `{ floats }` to force FLOAT/FLOATS.
 */
export function attribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === "string") {
    return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  }
  if (typeof value === "number") {
    if (Number.isInteger(value)) return { name, type: T.INT, i: value };
    return { name, type: T.FLOAT, f: value };
  }
  if ("float" in value) return { name, type: T.FLOAT, f: value.float };
  if ("floats" in value) return { name, type: T.FLOATS, floats: [...value.floats] };
  if (value.every((v) => Number.isInteger(v))) return { name, type: T.INTS, ints: [...value] };
  return { name, type: T.FLOATS, floats: [...value] };
}

/** A graph node. `attributes` are emitted in the order given (keep it stable for reproducibility). */
export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  options: { name?: string; attributes?: Readonly<Record<string, AttributeValue>>; domain?: string } = {},
): onnx.INodeProto {
  const n: onnx.INodeProto = {
    opType,
    input: [...inputs],
    output: [...outputs],
    name: options.name ?? `${opType}_${outputs[0] ?? ""}`,
  };
  if (options.domain) n.domain = options.domain;
  if (options.attributes) {
    n.attribute = Object.entries(options.attributes).map(([k, v]) => attribute(k, v));
  }
  return n;
}

/** A typed tensor value info; string dims become symbolic `dim_param`s. */
export function valueInfo(name: string, elemType: DataTypeId, dims: readonly Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })),
        },
      },
    },
  };
}

export interface GraphSpec {
  name: string;
  nodes: onnx.INodeProto[];
  inputs: onnx.IValueInfoProto[];
  outputs: onnx.IValueInfoProto[];
  initializers?: onnx.ITensorProto[];
  docString?: string;
}

export interface ModelOptions {
  /** Model-level doc string. */
  docString?: string;
  /** Extra metadata_props (emitted in the given order). */
  metadata?: Readonly<Record<string, string>>;
  modelVersion?: number;
}

/** Build a ModelProto (ir_version 8, default-domain opset 17, producer "gradnet"). */
export function makeModel(graph: GraphSpec, options: ModelOptions = {}): onnx.IModelProto {
  const g: onnx.IGraphProto = {
    name: graph.name,
    node: graph.nodes,
    input: graph.inputs,
    output: graph.outputs,
    initializer: graph.initializers ?? [],
  };
  if (graph.docString) g.docString = graph.docString;
  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET_VERSION }],
    producerName: PRODUCER_NAME,
    graph: g,
  };
  if (options.docString) model.docString = options.docString;
  if (options.modelVersion !== undefined) model.modelVersion = options.modelVersion;
  if (options.metadata) {
    model.metadataProps = Object.entries(options.metadata).map(([key, value]) => ({ key, value }));
  }
  return model;
}

/** Serialise a graph (or an already-built ModelProto) to ONNX protobuf bytes. */
export function serializeModel(model: GraphSpec | onnx.IModelProto, options: ModelOptions = {}): Uint8Array {
  const proto = "nodes" in model ? makeModel(model, options) : model;
  return onnx.ModelProto.encode(proto).finish();
}

/** mulberry32: tiny, fast, seeded 32-bit PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Xavier/Glorot-uniform matrix [fanIn, fanOut] (row-major) from `rand`. */
export function xavierUniform(fanIn: number, fanOut: number, rand: () => number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < out.length; i++) out[i] = (rand() * 2 - 1) * limit;
  return out;
}

export interface MlpOptions {
  name: string;
  inputName: string;
  outputName: string;
  /** Layer widths, input first: [in, hidden..., out]; at least two entries. */
  sizes: readonly number[];
  seed: number;
  /** "dynamic" → symbolic `dim_param` "batch"; a number → fixed batch size. */
  batch: "dynamic" | number;
  /** Activation between layers. */
  activation: "Relu";
  /** Also apply the activation after the last layer (default false). */
  finalActivation?: boolean;
  /** Bias init range ±biasScale (default 0.1). */
  biasScale?: number;
  docString?: string;
}

/** Graph (not yet serialised) of a seeded MLP: MatMul + Add per layer, activation between layers. */
export function mlpGraph(opts: MlpOptions): GraphSpec {
  const { sizes } = opts;
  if (sizes.length < 2) throw new Error("buildMlp: need at least input and output sizes");
  for (const s of sizes) {
    if (!Number.isSafeInteger(s) || s <= 0) throw new Error(`buildMlp: bad layer size ${s}`);
  }
  const batch: Dim = opts.batch === "dynamic" ? "batch" : opts.batch;
  const rand = mulberry32(opts.seed);
  const biasScale = opts.biasScale ?? 0.1;
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  let current = opts.inputName;
  const layers = sizes.length - 1;
  for (let l = 0; l < layers; l++) {
    const fanIn = sizes[l] as number;
    const fanOut = sizes[l + 1] as number;
    const w = `W${l}`;
    const b = `B${l}`;
    initializers.push(floatTensor(w, [fanIn, fanOut], xavierUniform(fanIn, fanOut, rand)));
    const bias = new Float32Array(fanOut);
    for (let i = 0; i < fanOut; i++) bias[i] = (rand() * 2 - 1) * biasScale;
    initializers.push(floatTensor(b, [fanOut], bias));
    const last = l === layers - 1;
    const activate = !last || opts.finalActivation === true;
    const mm = `layer${l}_matmul`;
    const add = last && !activate ? opts.outputName : `layer${l}_add`;
    nodes.push(node("MatMul", [current, w], [mm], { name: `MatMul_${l}` }));
    nodes.push(node("Add", [mm, b], [add], { name: `Add_${l}` }));
    current = add;
    if (activate) {
      const act = last ? opts.outputName : `layer${l}_${opts.activation.toLowerCase()}`;
      nodes.push(node(opts.activation, [add], [act], { name: `${opts.activation}_${l}` }));
      current = act;
    }
  }
  return {
    name: opts.name,
    nodes,
    initializers,
    inputs: [valueInfo(opts.inputName, DataType.FLOAT, [batch, sizes[0] as number])],
    outputs: [valueInfo(opts.outputName, DataType.FLOAT, [batch, sizes[sizes.length - 1] as number])],
    docString: opts.docString,
  };
}

/** Serialised seeded MLP (see {@link mlpGraph}). Deterministic in its options. */
export function buildMlp(opts: MlpOptions): Uint8Array {
  return serializeModel(mlpGraph(opts));
}

/** Shape/type description of a graph input or output, as used in gradnet's manifest. */
export interface TensorSchema {
  name: string;
  dtype: number;
  /** -1 for symbolic (dynamic) axes. */
  shape: number[];
}

/** Extract the manifest schema (-1 for dynamic axes) from value infos, so it always matches the graph. */
export function schemaOf(infos: readonly onnx.IValueInfoProto[]): TensorSchema[] {
  return infos.map((vi) => {
    const t = vi.type?.tensorType;
    if (!vi.name || !t || t.elemType == null) throw new Error("schemaOf: only typed tensor values supported");
    return {
      name: vi.name,
      dtype: t.elemType,
      shape: (t.shape?.dim ?? []).map((d) => (d.dimParam ? -1 : Number(d.dimValue))),
    };
  });
}
