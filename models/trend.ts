/**
 * Feed trend model: the direction of the last few values of a data feed.
 *
 *   prices [1,8] (oldest first) → centred on their mean, divided by it → (· slope weights)
 *     = `trend` [1,1]: the least-squares slope, in basis points of the mean per round
 *   trend → logits [k(t - θ), 0, k(-t - θ)] → Softmax = `direction` [1,3]: up, flat, down
 *
 * Nothing is trained: the slope weights are the closed-form least-squares ones,
 * w_i = (i - mean(i)) / Σ(i - mean(i))², so the model is exact and scale-free (a price in any
 * unit gives the same answer). Fixed numbers only: the same code always gives the same bytes.
 */
import { DataType, type GraphSpec, floatTensor, node, serializeModel, valueInfo } from "./onnx";

/** How many feed values the model reads. */
export const TREND_WINDOW = 8;
/** A slope within ±TREND_FLAT_BPS basis points of the mean per round counts as flat. */
export const TREND_FLAT_BPS = 2;
/** Logits per basis point of slope beyond the flat band: how sharply `direction` decides. */
export const TREND_SHARPNESS = 2;
export const TREND_CLASSES = ["up", "flat", "down"] as const;

/** The least-squares slope weights over positions 0..n-1, scaled to basis points. */
export function slopeWeights(n = TREND_WINDOW): number[] {
  const mid = (n - 1) / 2;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (i - mid) ** 2;
  return Array.from({ length: n }, (_, i) => ((i - mid) / ss) * 10_000);
}

/**
 * The model's arithmetic in float64, for tests: slope in bps of the mean per round, and the
 * direction probabilities.
 */
export function referenceTrend(prices: readonly number[]): { trend: number; direction: number[] } {
  const mean = prices.reduce((a, b) => a + b, 0) / prices.length;
  const w = slopeWeights(prices.length);
  const trend = prices.reduce((acc, p, i) => acc + ((p - mean) / mean) * (w[i] as number), 0);
  const k = TREND_SHARPNESS;
  const logits = [k * (trend - TREND_FLAT_BPS), 0, k * (-trend - TREND_FLAT_BPS)];
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return { trend, direction: e.map((x) => x / sum) };
}

export function trendGraph(): GraphSpec {
  const k = TREND_SHARPNESS;
  return {
    name: "feed_trend",
    docString:
      `Trend of the last ${TREND_WINDOW} values of a data feed, oldest first: least-squares slope ` +
      "in basis points of the mean per round, and up/flat/down probabilities",
    initializers: [
      floatTensor("slope_weights", [TREND_WINDOW, 1], slopeWeights()),
      floatTensor("direction_weights", [1, 3], [k, 0, -k]),
      floatTensor("direction_bias", [3], [-k * TREND_FLAT_BPS, 0, -k * TREND_FLAT_BPS]),
    ],
    nodes: [
      node("ReduceMean", ["prices"], ["mean"], { name: "mean", attributes: { axes: [1], keepdims: 1 } }),
      node("Sub", ["prices", "mean"], ["centred"], { name: "centre" }),
      node("Div", ["centred", "mean"], ["relative"], { name: "relative" }),
      node("MatMul", ["relative", "slope_weights"], ["trend"], { name: "slope" }),
      node("MatMul", ["trend", "direction_weights"], ["direction_matmul"], { name: "direction_matmul" }),
      node("Add", ["direction_matmul", "direction_bias"], ["direction_logits"], { name: "direction_add" }),
      node("Softmax", ["direction_logits"], ["direction"], { name: "direction", attributes: { axis: 1 } }),
    ],
    inputs: [valueInfo("prices", DataType.FLOAT, [1, TREND_WINDOW])],
    outputs: [valueInfo("trend", DataType.FLOAT, [1, 1]), valueInfo("direction", DataType.FLOAT, [1, 3])],
  };
}

export function buildTrendModel(): { bytes: Uint8Array; graph: GraphSpec } {
  const graph = trendGraph();
  const bytes = serializeModel(graph, {
    docString: "gradnet demo: trend of a data feed's recent values (closed-form least squares, no training)",
  });
  return { bytes, graph };
}
