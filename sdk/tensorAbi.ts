/**
 * A fast, strict ABI codec for exactly one type: `Tensor[]`
 * (`tuple(string name, uint8 dtype, uint8 decimals, uint32[] shape, int256[] values, string[] strings)[]`).
 *
 * It produces the bytes Solidity's `abi.encode(tensors)` produces and reads what Solidity's
 * `abi.decode(data, (Tensor[]))` reads: offsets are followed, every offset and length is
 * bounds-checked, and `uint8`/`uint32` words with high bits set are refused, as solc refuses
 * them. It exists because the inference hot path decodes and encodes every request, and the
 * general-purpose codecs take hundreds of microseconds for what this does in a few; unit
 * tests check it byte for byte against viem and ethers.
 */
import { TensorEncodingError } from "./errors";
import type { WireTensor } from "./tensor";

const WORD = 32;
const TWO_256 = 1n << 256n;
const TWO_255 = 1n << 255n;
const MAX_ELEMENTS = 1 << 24;

// ---------------------------------------------------------------------------- encoding

class Writer {
  private readonly parts: string[] = [];
  length = 0; // bytes

  word(hex64: string): void {
    this.parts.push(hex64);
    this.length += WORD;
  }

  uint(n: number): void {
    this.word(n.toString(16).padStart(64, "0"));
  }

  int256(v: bigint): void {
    this.word((v < 0n ? v + TWO_256 : v).toString(16).padStart(64, "0"));
  }

  bytes(b: Buffer): void {
    this.uint(b.length);
    if (b.length === 0) return;
    const padded = Math.ceil(b.length / WORD) * WORD;
    this.parts.push(b.toString("hex").padEnd(padded * 2, "0"));
    this.length += padded;
  }

  hex(): `0x${string}` {
    return `0x${this.parts.join("")}`;
  }
}

function stringSize(s: string): number {
  return WORD + Math.ceil(Buffer.byteLength(s, "utf8") / WORD) * WORD;
}

function stringArraySize(xs: readonly string[]): number {
  return WORD + xs.length * WORD + xs.reduce((n, s) => n + stringSize(s), 0);
}

function tensorSize(t: WireTensor): number {
  return (
    6 * WORD +
    stringSize(t.name) +
    WORD * (1 + t.shape.length) +
    WORD * (1 + t.values.length) +
    stringArraySize(t.strings)
  );
}

/** abi.encode(Tensor[]). Values must already be in range (the caller checks). */
export function encodeTensorArray(tensors: readonly WireTensor[]): `0x${string}` {
  const w = new Writer();
  w.uint(WORD); // offset of the array
  w.uint(tensors.length);
  let offset = tensors.length * WORD;
  for (const t of tensors) {
    w.uint(offset);
    offset += tensorSize(t);
  }
  for (const t of tensors) {
    const nameAt = 6 * WORD;
    const shapeAt = nameAt + stringSize(t.name);
    const valuesAt = shapeAt + WORD * (1 + t.shape.length);
    const stringsAt = valuesAt + WORD * (1 + t.values.length);
    w.uint(nameAt);
    w.uint(t.dtype);
    w.uint(t.decimals);
    w.uint(shapeAt);
    w.uint(valuesAt);
    w.uint(stringsAt);
    w.bytes(Buffer.from(t.name, "utf8"));
    w.uint(t.shape.length);
    for (const d of t.shape) w.uint(d);
    w.uint(t.values.length);
    for (const v of t.values) w.int256(v);
    w.uint(t.strings.length);
    let at = t.strings.length * WORD;
    for (const s of t.strings) {
      w.uint(at);
      at += stringSize(s);
    }
    for (const s of t.strings) w.bytes(Buffer.from(s, "utf8"));
  }
  return w.hex();
}

// ---------------------------------------------------------------------------- decoding

class Reader {
  constructor(private readonly buf: Buffer) {}

  private fail(what: string): never {
    throw new TensorEncodingError(`bytes are not abi.encode(Tensor[]): ${what}`);
  }

  /** A word as a small unsigned integer (offsets, lengths, uint8, uint32). */
  uint(at: number, max: number, what: string): number {
    if (at < 0 || at + WORD > this.buf.length) this.fail(`${what} is past the end`);
    for (let i = at; i < at + WORD - 6; i++) if (this.buf[i] !== 0) this.fail(`${what} is out of range`);
    const v = this.buf.readUIntBE(at + WORD - 6, 6);
    if (v > max) this.fail(`${what} is out of range`);
    return v;
  }

  int256(at: number): bigint {
    if (at + WORD > this.buf.length) this.fail("a value is past the end");
    const v = BigInt(`0x${this.buf.toString("hex", at, at + WORD)}`);
    return v >= TWO_255 ? v - TWO_256 : v;
  }

  string(at: number, what: string): string {
    const len = this.uint(at, this.buf.length, `${what} length`);
    if (at + WORD + len > this.buf.length) this.fail(`${what} is past the end`);
    return this.buf.toString("utf8", at + WORD, at + WORD + len);
  }

  /** Follow an offset stored at `headAt`, relative to `base`. */
  offset(base: number, headAt: number, what: string): number {
    return base + this.uint(headAt, this.buf.length, `${what} offset`);
  }

  count(at: number, what: string, elementWords: number): number {
    const n = this.uint(at, MAX_ELEMENTS, `${what} length`);
    if (at + WORD + n * WORD * elementWords > this.buf.length) this.fail(`${what} is past the end`);
    return n;
  }
}

/** abi.decode(data, (Tensor[])), with solc's strictness. */
export function decodeTensorArray(hex: `0x${string}`): WireTensor[] {
  if (!/^0x([0-9a-fA-F]{2})*$/.test(hex)) throw new TensorEncodingError("bytes are not hex");
  const buf = Buffer.from(hex.slice(2), "hex");
  const r = new Reader(buf);
  const arrayAt = r.offset(0, 0, "array");
  const n = r.count(arrayAt, "array", 1);
  const base = arrayAt + WORD;
  const out: WireTensor[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.offset(base, base + i * WORD, `tensor ${i}`);
    const name = r.string(r.offset(t, t, "name"), "name");
    const dtype = r.uint(t + WORD, 0xff, "dtype");
    const decimals = r.uint(t + 2 * WORD, 0xff, "decimals");
    const shapeAt = r.offset(t, t + 3 * WORD, "shape");
    const dims = r.count(shapeAt, "shape", 1);
    const shape: number[] = [];
    for (let k = 0; k < dims; k++) shape.push(r.uint(shapeAt + WORD * (1 + k), 0xffffffff, "a dimension"));
    const valuesAt = r.offset(t, t + 4 * WORD, "values");
    const count = r.count(valuesAt, "values", 1);
    const values: bigint[] = [];
    for (let k = 0; k < count; k++) values.push(r.int256(valuesAt + WORD * (1 + k)));
    const stringsAt = r.offset(t, t + 5 * WORD, "strings");
    const m = r.count(stringsAt, "strings", 1);
    const strings: string[] = [];
    for (let k = 0; k < m; k++) {
      strings.push(r.string(r.offset(stringsAt + WORD, stringsAt + WORD * (1 + k), "a string"), "a string"));
    }
    out.push({ name, dtype, decimals, shape, values, strings });
  }
  return out;
}
