/**
 * The model store: files on disk, addressed by the sha256 of their bytes, and the check that an
 * uploaded file is an ONNX model a worker can load from its bytes alone.
 *
 *   <dir>/<first two hex digits>/<64 hex digits>      one file per content hash
 *   <dir>/tmp/                                        uploads in progress (renamed into place)
 */
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import type { Hex } from "viem";
import { onnx } from "onnx-proto";
import { GradnetError } from "../sdk";

export const HASH_PATTERN = /^0x[0-9a-f]{64}$/;

export function isContentHash(s: string): s is Hex {
  return HASH_PATTERN.test(s);
}

export function sha256Hex(bytes: Uint8Array): Hex {
  return `0x${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A string that is not a lower-case `0x` + 64 hex digits sha256. */
export class InvalidContentHashError extends GradnetError {
  constructor(readonly hash: string) {
    super(
      "INVALID_CONTENT_HASH",
      `"${hash.slice(0, 80)}" is not a sha256 hash (0x + 64 lower-case hex digits)`,
    );
  }
}

export interface PutResult {
  sha256: Hex;
  size: number;
  /** false when the store held these bytes already. */
  created: boolean;
}

export class ModelStore {
  readonly dir: string;
  private readonly tmpDir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.tmpDir = path.join(this.dir, "tmp");
  }

  /** Create the store's folders. */
  async init(): Promise<void> {
    await fs.promises.mkdir(this.tmpDir, { recursive: true });
  }

  /** Where `hash`'s bytes live. Only a well-formed hash gets a path, so no path can escape `dir`. */
  pathOf(hash: string): string {
    if (!isContentHash(hash)) throw new InvalidContentHashError(hash);
    const hex = hash.slice(2);
    return path.join(this.dir, hex.slice(0, 2), hex);
  }

  /** Store `bytes` under their sha256. Idempotent; a reader never sees a partial file. */
  async put(bytes: Uint8Array): Promise<PutResult> {
    const sha256 = sha256Hex(bytes);
    const file = this.pathOf(sha256);
    if (await exists(file)) return { sha256, size: bytes.length, created: false };
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await fs.promises.mkdir(this.tmpDir, { recursive: true });
    const tmp = path.join(this.tmpDir, `${sha256.slice(2, 18)}-${randomUUID()}`);
    try {
      const handle = await fs.promises.open(tmp, "wx");
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.promises.rename(tmp, file);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    return { sha256, size: bytes.length, created: true };
  }

  async has(hash: string): Promise<boolean> {
    return exists(this.pathOf(hash));
  }

  async get(hash: string): Promise<Buffer | undefined> {
    try {
      return await fs.promises.readFile(this.pathOf(hash));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The bytes as a stream with their size, for serving large files without buffering them. */
  async open(hash: string): Promise<{ size: number; stream: Readable } | undefined> {
    const file = this.pathOf(hash);
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, "r");
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const { size } = await handle.stat();
    return { size, stream: handle.createReadStream() };
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.promises.access(file);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

// -------------------------------------------------------------------------------- ONNX check

/** Bytes that are not an ONNX model gradnet can serve; `reason` says why. */
export class InvalidOnnxModelError extends GradnetError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super("INVALID_ONNX_MODEL", `not a usable ONNX model: ${reason}`, options);
  }
}

export interface OnnxSummary {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: string;
  graphName: string;
  nodes: number;
  inputs: string[];
  outputs: string[];
  initializers: number;
}

/**
 * Decode `bytes` as an ONNX ModelProto and check that a worker can load it from these bytes alone:
 * an IR version and opset, a graph with at least one node, one input and one output, and no tensor
 * anywhere (initializers, node attributes, subgraphs, functions) whose data lives in an external file.
 * Throws InvalidOnnxModelError with the reason.
 */
export function validateOnnx(bytes: Uint8Array): OnnxSummary {
  if (bytes.length === 0) throw new InvalidOnnxModelError("the file is empty");
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    throw new InvalidOnnxModelError(`the bytes do not decode as an ONNX ModelProto (${msg})`, { cause });
  }
  const irVersion = Number(model.irVersion);
  if (!(irVersion > 0)) throw new InvalidOnnxModelError("ir_version is missing");
  if (model.opsetImport.length === 0) throw new InvalidOnnxModelError("the model imports no opset");
  const graph = model.graph;
  if (graph === null || graph === undefined) throw new InvalidOnnxModelError("the model has no graph");
  const nodes = graph.node ?? [];
  const inputs = graph.input ?? [];
  const outputs = graph.output ?? [];
  if (nodes.length === 0) throw new InvalidOnnxModelError("the graph has no nodes");
  if (inputs.length === 0) throw new InvalidOnnxModelError("the graph has no inputs");
  if (outputs.length === 0) throw new InvalidOnnxModelError("the graph has no outputs");

  const external = findExternalData(graph, "graph", new Set()) ?? findExternalInFunctions(model);
  if (external !== undefined)
    throw new InvalidOnnxModelError(
      `tensor ${external} keeps its data in an external file; upload a model with all weights inside it`,
    );

  return {
    irVersion,
    opsets: model.opsetImport.map((o) => ({ domain: o.domain ?? "", version: Number(o.version) })),
    producer: [model.producerName, model.producerVersion].filter((s) => s).join(" "),
    graphName: graph.name ?? "",
    nodes: nodes.length,
    inputs: inputs.map((i) => i.name ?? ""),
    outputs: outputs.map((o) => o.name ?? ""),
    initializers: graph.initializer?.length ?? 0,
  };
}

function isExternal(t: onnx.ITensorProto | null | undefined): boolean {
  if (t === null || t === undefined) return false;
  return t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0;
}

/** The name of the first tensor with external data in `graph` or its subgraphs, if any. */
function findExternalData(
  graph: onnx.IGraphProto,
  where: string,
  seen: Set<onnx.IGraphProto>,
): string | undefined {
  if (seen.has(graph)) return undefined;
  seen.add(graph);
  const label = (t: onnx.ITensorProto, kind: string) => `"${t.name ?? ""}" (${kind} of ${where})`;
  for (const t of graph.initializer ?? []) if (isExternal(t)) return label(t, "initializer");
  for (const s of graph.sparseInitializer ?? []) {
    for (const t of [s.values, s.indices]) if (t && isExternal(t)) return label(t, "sparse initializer");
  }
  return findExternalInNodes(graph.node ?? [], where, seen);
}

function findExternalInNodes(
  nodes: onnx.INodeProto[],
  where: string,
  seen: Set<onnx.IGraphProto>,
): string | undefined {
  for (const node of nodes) {
    for (const attr of node.attribute ?? []) {
      const at = `attribute ${attr.name ?? ""} of node "${node.name ?? node.opType ?? ""}" in ${where}`;
      const tensors = [attr.t, ...(attr.tensors ?? [])];
      for (const t of tensors) if (t && isExternal(t)) return `"${t.name ?? ""}" (${at})`;
      for (const s of [attr.sparseTensor, ...(attr.sparseTensors ?? [])]) {
        for (const t of [s?.values, s?.indices]) if (t && isExternal(t)) return `"${t.name ?? ""}" (${at})`;
      }
      for (const g of [attr.g, ...(attr.graphs ?? [])]) {
        if (g) {
          const found = findExternalData(g, `subgraph of ${at}`, seen);
          if (found !== undefined) return found;
        }
      }
    }
  }
  return undefined;
}

function findExternalInFunctions(model: onnx.IModelProto): string | undefined {
  for (const f of model.functions ?? []) {
    const found = findExternalInNodes(f.node ?? [], `function ${f.name ?? ""}`, new Set());
    if (found !== undefined) return found;
  }
  return undefined;
}
