/**
 * Builds gradnet's demo ONNX models and their manifest (`npm run models`).
 *
 * Output (into models/ by default): iris-mlp.onnx, tiny-relu.onnx, feed-trend.onnx, manifest.json.
 * Fully deterministic: running it twice yields byte-identical files.
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildIrisModel } from "./iris";
import { TREND_CLASSES, TREND_FLAT_BPS, TREND_WINDOW, buildTrendModel } from "./trend";
import { type GraphSpec, type TensorSchema, mlpGraph, schemaOf, serializeModel } from "./onnx";

export const MANIFEST_FILE = "manifest.json";

export interface ManifestModel {
  name: string;
  file: string;
  /** 0x-prefixed hex sha256 of the .onnx bytes = the model id on chain. */
  sha256: string;
  description: string;
  decimals: number;
  /** Fee per inference, in wei, as a decimal string. */
  fee: string;
  ownerShareBps: number;
  schema: { inputs: TensorSchema[]; outputs: TensorSchema[] };
  classes?: string[];
  trainAccuracy?: number;
}

export interface Manifest {
  models: ManifestModel[];
}

export interface BuiltModel {
  entry: ManifestModel;
  bytes: Uint8Array;
  path: string;
}

export interface BuildResult {
  outDir: string;
  manifest: Manifest;
  manifestPath: string;
  manifestText: string;
  models: BuiltModel[];
  iris: { trainAccuracy: number; finalLoss: number; minMargin: number };
}

export function sha256Hex(bytes: Uint8Array): string {
  return "0x" + createHash("sha256").update(bytes).digest("hex");
}

/** Graph of the tiny fixed-shape demo: x[1,8] → MatMul(8×4) + Add + Relu → y[1,4]. */
export function tinyReluGraph(): GraphSpec {
  return mlpGraph({
    name: "tiny_relu",
    inputName: "x",
    outputName: "y",
    sizes: [8, 4],
    seed: 7,
    batch: 1,
    activation: "Relu",
    finalActivation: true,
    docString: "Tiny demo: y = relu(x @ W + b), x float[1,8], y float[1,4]",
  });
}

function schemaOfGraph(graph: GraphSpec): ManifestModel["schema"] {
  return { inputs: schemaOf(graph.inputs), outputs: schemaOf(graph.outputs) };
}

/**
 * JSON in the exact layout prettier produces (objects expanded, primitive arrays inline), so the
 * generated manifest passes `prettier --check` without depending on prettier at build time.
 */
export function stableJson(value: unknown, indent = ""): string {
  const inner = indent + "  ";
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new Error("non-finite number in JSON");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    if (value.every((v) => v === null || typeof v !== "object")) {
      const flat = "[" + value.map((v) => stableJson(v)).join(", ") + "]";
      if (indent.length + flat.length <= 80) return flat;
    }
    return "[\n" + value.map((v) => inner + stableJson(v, inner)).join(",\n") + "\n" + indent + "]";
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return "{}";
  const body = entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${stableJson(v, inner)}`);
  return "{\n" + body.join(",\n") + "\n" + indent + "}";
}

/** Build every demo model and the manifest into `outDir` (created if missing). */
export function buildAll(outDir: string): BuildResult {
  mkdirSync(outDir, { recursive: true });
  const iris = buildIrisModel();
  const tiny = tinyReluGraph();
  const tinyBytes = serializeModel(tiny, {
    docString: "gradnet demo: fixed-shape single-layer ReLU network with seeded weights",
  });
  const trend = buildTrendModel();

  const specs: { bytes: Uint8Array; graph: GraphSpec; meta: Omit<ManifestModel, "sha256" | "schema"> }[] = [
    {
      bytes: iris.bytes,
      graph: iris.graph,
      meta: {
        name: "iris-mlp",
        file: "iris-mlp.onnx",
        description:
          "Iris flower classifier (4-16-3 MLP). Input: raw measurements in cm [sepal length, sepal width, " +
          "petal length, petal width] per row, dynamic batch. Outputs: class probabilities and the argmax label.",
        decimals: 6,
        fee: "1000000000000000",
        ownerShareBps: 1000,
        classes: [...iris.classes],
        trainAccuracy: iris.trainAccuracy,
      },
    },
    {
      bytes: tinyBytes,
      graph: tiny,
      meta: {
        name: "tiny-relu",
        file: "tiny-relu.onnx",
        description:
          "Tiny fixed-shape demo: y = relu(x @ W + b), x float[1,8] -> y float[1,4], seeded weights.",
        decimals: 6,
        fee: "100000000000000",
        ownerShareBps: 1000,
      },
    },
    {
      bytes: trend.bytes,
      graph: trend.graph,
      meta: {
        name: "feed-trend",
        file: "feed-trend.onnx",
        description:
          `Trend of a data feed's last ${TREND_WINDOW} values (oldest first), prices float[1,${TREND_WINDOW}]. ` +
          "Outputs: trend float[1,1], the least-squares slope in basis points of the mean per round, and " +
          `direction float[1,3], up/flat/down probabilities (flat within ${TREND_FLAT_BPS} bps per round).`,
        decimals: 6,
        fee: "100000000000000",
        ownerShareBps: 1000,
        classes: [...TREND_CLASSES],
      },
    },
  ];

  const models: BuiltModel[] = specs.map(({ bytes, graph, meta }) => {
    // Fixed key order: name, file, sha256, description, decimals, fee, ownerShareBps, schema, extras.
    const entry: ManifestModel = {
      name: meta.name,
      file: meta.file,
      sha256: sha256Hex(bytes),
      description: meta.description,
      decimals: meta.decimals,
      fee: meta.fee,
      ownerShareBps: meta.ownerShareBps,
      schema: schemaOfGraph(graph),
      ...(meta.classes !== undefined ? { classes: meta.classes } : {}),
      ...(meta.trainAccuracy !== undefined ? { trainAccuracy: meta.trainAccuracy } : {}),
    };
    const path = join(outDir, meta.file);
    writeFileSync(path, bytes);
    return { entry, bytes, path };
  });

  const manifest: Manifest = { models: models.map((m) => m.entry) };
  const manifestText = stableJson(manifest) + "\n";
  const manifestPath = join(outDir, MANIFEST_FILE);
  writeFileSync(manifestPath, manifestText);
  return {
    outDir,
    manifest,
    manifestPath,
    manifestText,
    models,
    iris: { trainAccuracy: iris.trainAccuracy, finalLoss: iris.finalLoss, minMargin: iris.minMargin },
  };
}

if (require.main === module) {
  const result = buildAll(__dirname);
  for (const m of result.models) {
    const acc = m.entry.trainAccuracy !== undefined ? `  trainAccuracy=${m.entry.trainAccuracy}` : "";
    console.log(`${m.entry.name.padEnd(10)} ${m.entry.sha256}  ${m.bytes.length} bytes${acc}`);
  }
  console.log(
    `iris final loss ${result.iris.finalLoss.toFixed(6)}, min logit margin ${result.iris.minMargin.toFixed(4)}`,
  );
  console.log(`wrote ${result.models.length} models + ${MANIFEST_FILE} to ${result.outDir}`);
}
