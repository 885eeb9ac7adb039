/** Pure formatting for people (tables, tensors, a progress bar) and for machines (JSON). */
import type { NamedTensor } from "../sdk";

/** JSON with bigints as decimal strings. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n";
}

/** Rows of cells as aligned columns (the last column is not padded). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "))
    .join("\n");
}

/** Key/value lines: `  key   value`. */
export function fields(pairs: readonly (readonly [string, string])[], indent = ""): string {
  return table(pairs.map(([k, v]) => [`${indent}${k}`, v]));
}

/** Row-major data in nested arrays of `shape`. */
export function nest(data: readonly unknown[], shape: readonly number[]): unknown {
  if (shape.length === 0) return data[0];
  const [first, ...rest] = shape;
  const size = rest.reduce((n, d) => n * d, 1);
  return Array.from({ length: first! }, (_, i) => nest(data.slice(i * size, (i + 1) * size), rest));
}

/** A tensor with its data as nested JSON arrays (bigints as decimal strings). */
export function tensorJson(t: NamedTensor): { name: string; dtype: string; shape: number[]; value: unknown } {
  const data = Array.from(t.data as ArrayLike<unknown>, (v) => (typeof v === "bigint" ? v.toString() : v));
  return { name: t.name, dtype: t.dtype, shape: [...t.shape], value: nest(data, t.shape) };
}

/** Nested values as text: `[[0.01, 0.2, 0.79]]`; integers unquoted, strings quoted. */
export function valueText(value: unknown, dtype: string): string {
  if (Array.isArray(value)) return `[${value.map((v) => valueText(v, dtype)).join(", ")}]`;
  if (typeof value === "string") return dtype === "string" ? JSON.stringify(value) : value;
  return String(value);
}

/** `probabilities  float32[1, 3]  [[0.01, 0.2, 0.79]]` for each tensor (data row-major). */
export function tensorLines(
  tensors: readonly { name: string; dtype: string; shape: readonly number[]; data: ArrayLike<unknown> }[],
  indent = "  ",
): string {
  return table(
    tensors.map((t) => [
      `${indent}${t.name}`,
      `${t.dtype}[${t.shape.join(", ")}]`,
      valueText(nest(Array.from(t.data), t.shape), t.dtype),
    ]),
  );
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** `[##########..........]  50%  1.0 KiB / 2.0 KiB` */
export function progressBar(done: number, total: number, width = 30): string {
  const fraction = total === 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const filled = Math.round(fraction * width);
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${pct}  ${formatBytes(done)} / ${formatBytes(total)}`;
}

/** Unix seconds → ISO time, or "-" for 0. */
export function formatTime(seconds: bigint | number): string {
  const s = Number(seconds);
  return s === 0 ? "-" : new Date(s * 1000).toISOString().replace(".000Z", "Z");
}
