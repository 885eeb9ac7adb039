/**
 * Pure: a model input written as JSON → named tensors of the model's dtypes, checked against its
 * schema before anything is sent. Two forms are accepted:
 *
 *   {"input": [[5.1, 3.5, 1.4, 0.2]]}                        tensor name → nested arrays (or a scalar)
 *   [{"name": "input", "shape": [1, 4], "data": [5.1, ...]}]  NamedTensor objects; shape optional
 *
 * Shapes come from the nesting, dtypes from the schema. Errors are InputSchemaError (naming the
 * tensor and why) or InvalidInputError (the text is not JSON of either form).
 */
import { InputSchemaError, dtypeName, isFloat, type DType, type NamedTensor } from "../sdk";
import { InvalidInputError } from "./errors";

/** One input of a model's schema, as the registry holds it (dims -1 for dynamic axes). */
export interface InputSpec {
  name: string;
  dtype: number;
  shape: readonly number[];
}

export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInputError(`${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

type Scalar = number | string | boolean;

/** Shape of nested arrays; throws InputSchemaError when rows differ in length or depth. */
export function inferShape(name: string, value: unknown): { shape: number[]; flat: unknown[] } {
  const flat: unknown[] = [];
  const shape: number[] = [];
  const walk = (v: unknown, depth: number, at: number[]): void => {
    if (Array.isArray(v)) {
      if (depth === shape.length) {
        if (flat.length > 0)
          throw new InputSchemaError(
            name,
            `ragged nesting: ${where(at)} is an array where other entries are values`,
          );
        shape.push(v.length);
      } else if (depth > shape.length || shape[depth] !== v.length) {
        throw new InputSchemaError(
          name,
          `ragged nesting: ${where(at)} has ${v.length} entries, others at that depth have ${shape[depth]}`,
        );
      }
      v.forEach((x, i) => walk(x, depth + 1, [...at, i]));
      return;
    }
    if (depth !== shape.length)
      throw new InputSchemaError(
        name,
        `ragged nesting: ${where(at)} is a value where other entries are arrays`,
      );
    flat.push(v);
  };
  walk(value, 0, []);
  return { shape, flat };
}

function where(at: number[]): string {
  return at.length === 0 ? "the value" : `element [${at.join("][")}]`;
}

function convertElement(name: string, dtype: DType, v: unknown, i: number): Scalar | bigint {
  const bad = (want: string) =>
    new InputSchemaError(name, `element ${i} is ${JSON.stringify(v)}, the model takes ${dtype} (${want})`);
  if (isFloat(dtype)) {
    if (typeof v !== "number") throw bad("a number");
    return v;
  }
  if (dtype === "int32" || dtype === "int64") {
    if (typeof v === "number" && Number.isSafeInteger(v)) return dtype === "int64" ? BigInt(v) : v;
    if (dtype === "int64" && typeof v === "string" && /^-?[0-9]+$/.test(v)) return BigInt(v);
    throw bad(dtype === "int64" ? "an integer, or a decimal string" : "an integer");
  }
  if (dtype === "bool") {
    if (typeof v === "boolean") return v;
    if (v === 0 || v === 1) return v === 1;
    throw bad("true or false");
  }
  if (typeof v !== "string") throw bad("a string");
  return v;
}

function tensorOf(spec: InputSpec, value: unknown, declaredShape?: readonly number[]): NamedTensor {
  const dtype = dtypeName(spec.dtype);
  const inferred = inferShape(spec.name, value);
  const flat = inferred.flat;
  let shape = inferred.shape;
  if (declaredShape !== undefined) {
    if (shape.length > 1) {
      if (shape.join() !== declaredShape.join())
        throw new InputSchemaError(
          spec.name,
          `"shape" is [${declaredShape.join(", ")}] but the nested data has shape [${shape.join(", ")}]`,
        );
    }
    const count = declaredShape.reduce((n, d) => n * d, 1);
    if (count !== flat.length)
      throw new InputSchemaError(
        spec.name,
        `"shape" [${declaredShape.join(", ")}] holds ${count} elements, "data" has ${flat.length}`,
      );
    shape = [...declaredShape];
  }
  const data = flat.map((v, i) => convertElement(spec.name, dtype, v, i));
  return { name: spec.name, dtype, shape, data: data as NamedTensor["data"] };
}

function specFor(specs: readonly InputSpec[], name: string): InputSpec {
  const spec = specs.find((s) => s.name === name);
  if (spec === undefined)
    throw new InputSchemaError(
      name,
      `the model has no input of this name (inputs: ${specs.map((s) => s.name).join(", ")})`,
    );
  return spec;
}

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
}

/** JSON (either form) → tensors in the schema's input order. Missing inputs are named. */
export function tensorsFromJson(json: unknown, specs: readonly InputSpec[]): NamedTensor[] {
  const byName = new Map<string, NamedTensor>();
  const add = (t: NamedTensor) => {
    if (byName.has(t.name)) throw new InputSchemaError(t.name, "given twice");
    byName.set(t.name, t);
  };
  if (Array.isArray(json)) {
    json.forEach((entry, k) => {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry))
        throw new InvalidInputError(`input entry ${k} is not an object {"name", "data", "shape"?}`);
      const e = entry as Record<string, unknown>;
      if (typeof e.name !== "string") throw new InvalidInputError(`input entry ${k} has no "name" string`);
      const spec = specFor(specs, e.name);
      if (!("data" in e)) throw new InputSchemaError(e.name, 'no "data"');
      if (e.dtype !== undefined && e.dtype !== dtypeName(spec.dtype))
        throw new InputSchemaError(
          e.name,
          `dtype ${String(e.dtype)} given, the model takes ${dtypeName(spec.dtype)}`,
        );
      if (e.shape !== undefined && !isShape(e.shape))
        throw new InputSchemaError(e.name, '"shape" must be an array of non-negative integers');
      add(tensorOf(spec, e.data, e.shape));
    });
  } else if (json !== null && typeof json === "object") {
    for (const [name, value] of Object.entries(json)) add(tensorOf(specFor(specs, name), value));
  } else {
    throw new InvalidInputError(
      'the input must be a JSON object {"<input name>": [[...]]} or an array of {"name", "data"} tensors',
    );
  }
  return specs.map((s) => {
    const t = byName.get(s.name);
    if (t === undefined) throw new InputSchemaError(s.name, "missing");
    return t;
  });
}
