/**
 * Pure: what `gradnet model push` reads from an ONNX file: the graph's inputs (initializers
 * excluded) and outputs as a registry schema, and registration terms a model author may put in
 * the model's metadata_props (`gradnet.fee` in wei, `gradnet.decimals`, `gradnet.owner_share_bps`).
 */
import { onnx } from "onnx-proto";
import { DTYPE_CODE } from "../sdk";
import { InvalidInputError } from "./errors";

export interface SchemaTensor {
  name: string;
  /** ONNX TensorProto.DataType number. */
  dtype: number;
  /** -1 for a symbolic or unknown axis. */
  shape: number[];
}

export interface OnnxSchema {
  inputs: SchemaTensor[];
  outputs: SchemaTensor[];
}

export interface OnnxDescription {
  schema: OnnxSchema;
  /** metadata_props, key → value. */
  metadata: Record<string, string>;
}

const SUPPORTED = new Set<number>(Object.values(DTYPE_CODE));
const SUPPORTED_NAMES = "float, int32, int64, string, bool, double";

function elemTypeName(code: number): string {
  return onnx.TensorProto.DataType[code] ?? `code ${code}`;
}

function tensorOf(vi: onnx.IValueInfoProto, kind: "input" | "output"): SchemaTensor {
  const name = vi.name ?? "";
  if (name === "") throw new InvalidInputError(`an ONNX graph ${kind} has no name`);
  const t = vi.type?.tensorType;
  if (t === null || t === undefined)
    throw new InvalidInputError(
      `${kind} "${name}" is not a tensor (sequences and maps cannot be carried on chain)`,
    );
  const dtype = Number(t.elemType ?? 0);
  if (!SUPPORTED.has(dtype))
    throw new InvalidInputError(
      `${kind} "${name}" has ONNX element type ${elemTypeName(dtype)} (${dtype}); gradnet carries ${SUPPORTED_NAMES}`,
    );
  if (t.shape === null || t.shape === undefined)
    throw new InvalidInputError(
      `${kind} "${name}" has no shape in the graph; export the model with static shapes`,
    );
  // A dimension is a fixed size (dim_value), a symbol (dim_param, e.g. "batch") or unknown.
  const shape = (t.shape.dim ?? []).map((d) => {
    if (d.dimValue === null || d.dimValue === undefined) return -1;
    const n = Number(d.dimValue);
    return Number.isSafeInteger(n) && n >= 0 ? n : -1;
  });
  return { name, dtype, shape };
}

/**
 * Read the schema and metadata of ONNX bytes. The caller checks first that the bytes are an
 * ONNX model (node's validateOnnx); this reads only what registration needs.
 */
export function describeOnnx(bytes: Uint8Array): OnnxDescription {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new InvalidInputError(`not an ONNX model: ${(err as Error).message}`, { cause: err });
  }
  const graph = model.graph;
  if (graph === null || graph === undefined)
    throw new InvalidInputError("not an ONNX model: it has no graph");
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ""));
  const inputs = (graph.input ?? [])
    .filter((vi) => !initializers.has(vi.name ?? ""))
    .map((vi) => tensorOf(vi, "input"));
  const outputs = (graph.output ?? []).map((vi) => tensorOf(vi, "output"));
  if (inputs.length === 0)
    throw new InvalidInputError("the ONNX graph takes no inputs (all are initializers)");
  if (outputs.length === 0) throw new InvalidInputError("the ONNX graph has no outputs");
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? "";
  return { schema: { inputs, outputs }, metadata };
}
