import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AbiCoder } from "ethers";
import { decodeAbiParameters, encodeAbiParameters } from "viem";
import { decodeTensorArray } from "../../sdk/tensorAbi";
import {
  NonFiniteValueError,
  TENSOR_ABI,
  TensorEncodingError,
  decodeTensors,
  decodeWire,
  encodeTensors,
  encodeWire,
  fromFixedPoint,
  outputHash,
  toFixedPoint,
  toWire,
  type NamedTensor,
} from "../../sdk";

test("fixed-point rounds the exact value of the double, half to even", () => {
  assert.equal(toFixedPoint(0.5, 0), 0n);
  assert.equal(toFixedPoint(1.5, 0), 2n);
  assert.equal(toFixedPoint(2.5, 0), 2n);
  assert.equal(toFixedPoint(-2.5, 0), -2n);
  assert.equal(toFixedPoint(-3.5, 0), -4n);
  // 0.15 is 0.1499999999999999944… as a double: it rounds down, where x*10 in floats would not.
  assert.equal(toFixedPoint(0.15, 1), 1n);
  assert.equal(toFixedPoint(0.25, 1), 2n);
  assert.equal(toFixedPoint(0.35, 1), 3n); // 0.34999999999999997779…
  assert.equal(toFixedPoint(Math.fround(0.1), 9), 100000001n); // float32 0.100000001490116…
  assert.equal(toFixedPoint(1e300, 2), BigInt(1e300) * 100n); // BigInt(double) is exact
  assert.equal(toFixedPoint(5e-324, 18), 0n);
  assert.equal(toFixedPoint(-0, 6), 0n);
  assert.equal(toFixedPoint(123.456789, 6), 123456789n);
});

test("fixed-point: integers scale exactly and the error is at most half a unit", () => {
  // Every double of magnitude ≥ 2^53 is an integer, and BigInt() converts it exactly.
  fc.assert(
    fc.property(
      fc.double({ min: 2 ** 53, max: 1e308, noNaN: true }),
      fc.integer({ min: 0, max: 18 }),
      (x, d) => {
        assert.equal(toFixedPoint(x, d), BigInt(x) * 10n ** BigInt(d));
        assert.equal(toFixedPoint(-x, d), -BigInt(x) * 10n ** BigInt(d));
      },
    ),
  );
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 0, max: 6 }), (n, d) => {
      assert.equal(toFixedPoint(n, d), BigInt(n) * 10n ** BigInt(d));
    }),
  );
  fc.assert(
    fc.property(
      fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
      fc.integer({ min: 0, max: 9 }),
      (x, d) => {
        const q = toFixedPoint(x, d);
        // In doubles the comparison is approximate; the bound leaves room for that only.
        assert.ok(Math.abs(Number(q) - x * 10 ** d) <= 0.5 + Math.abs(x * 10 ** d) * 1e-15 + 1e-9);
      },
    ),
  );
  fc.assert(
    fc.property(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        assert.ok(toFixedPoint(lo, 6) <= toFixedPoint(hi, 6));
      },
    ),
  );
});

test("NaN and Infinity are refused with a typed error naming the tensor and element", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(
      () => encodeTensors([{ name: "x", dtype: "float32", shape: [3], data: [1, bad, 2] }], 6),
      (e: unknown) => e instanceof NonFiniteValueError && e.tensorName === "x" && e.index === 1,
    );
  }
  fc.assert(
    fc.property(
      fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 20 }),
      fc.nat(),
      fc.constantFrom(NaN, Infinity, -Infinity),
      (values, at, bad) => {
        const data = [...values];
        data[at % data.length] = bad;
        assert.throws(
          () => encodeTensors([{ name: "t", dtype: "float32", shape: [data.length], data }], 4),
          NonFiniteValueError,
        );
      },
    ),
  );
});

const nameArb = fc.string({ minLength: 1, maxLength: 12 });
const tensorArb: fc.Arbitrary<NamedTensor> = fc.oneof(
  fc
    .array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), { maxLength: 8 })
    .map((data) => ({ name: "", dtype: "float32" as const, shape: [data.length], data })),
  fc
    .array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 8 })
    .map((data) => ({ name: "", dtype: "int64" as const, shape: [1, data.length], data })),
  fc
    .array(fc.string({ maxLength: 10 }), { maxLength: 5 })
    .map((data) => ({ name: "", dtype: "string" as const, shape: [data.length], data })),
  fc
    .array(fc.boolean(), { maxLength: 5 })
    .map((data) => ({ name: "", dtype: "bool" as const, shape: [data.length], data })),
);
const tensorsArb = fc
  .uniqueArray(nameArb, { minLength: 1, maxLength: 5 })
  .chain((names) => fc.tuple(...names.map((n) => tensorArb.map((t) => ({ ...t, name: n })))));

test("round trip: decode(encode(t)) is t in wire form, sorted by name", () => {
  fc.assert(
    fc.property(tensorsArb, fc.integer({ min: 0, max: 18 }), (tensors, decimals) => {
      const bytes = encodeTensors(tensors, decimals);
      const wire = decodeWire(bytes);
      const expected = tensors.map((t) => toWire(t, decimals));
      assert.deepEqual(
        [...wire].map((w) => w.name),
        [...expected.map((w) => w.name)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
      );
      for (const w of wire)
        assert.deepEqual(
          w,
          expected.find((e) => e.name === w.name),
        );
      assert.equal(encodeWire(wire), bytes);
    }),
  );
});

test("order of named outputs does not change the bytes or the hash", () => {
  fc.assert(
    fc.property(
      tensorsArb.chain((ts) =>
        fc.tuple(fc.constant(ts), fc.shuffledSubarray(ts, { minLength: ts.length, maxLength: ts.length })),
      ),
      ([a, b]) => {
        assert.equal(outputHash(encodeTensors(a, 6)), outputHash(encodeTensors(b, 6)));
      },
    ),
  );
});

test("float values survive the trip within half a unit of the last decimal", () => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1000, max: 1000 }), {
        minLength: 1,
        maxLength: 10,
      }),
      (data) => {
        const [t] = decodeTensors(
          encodeTensors([{ name: "p", dtype: "float32", shape: [data.length], data }], 6),
        );
        (t!.data as number[]).forEach((v, i) => assert.ok(Math.abs(v - data[i]!) <= 0.5e-6 + 1e-12));
      },
    ),
  );
  assert.equal(fromFixedPoint(123456789n, 6), 123.456789);
});

test("the wire bytes are what Solidity's abi.encode(Tensor[]) produces", () => {
  const tensors: NamedTensor[] = [
    { name: "probabilities", dtype: "float32", shape: [1, 3], data: [0.97, 0.025, 0.005] },
    { name: "label", dtype: "int64", shape: [1], data: [0n] },
    { name: "tag", dtype: "string", shape: [2], data: ["a", "bé"] },
  ];
  const wire = tensors.map((t) => toWire(t, 6));
  const ethersBytes = AbiCoder.defaultAbiCoder().encode(
    ["tuple(string name,uint8 dtype,uint8 decimals,uint32[] shape,int256[] values,string[] strings)[]"],
    [wire.map((w) => [w.name, w.dtype, w.decimals, w.shape, w.values, w.strings])],
  );
  assert.equal(encodeWire(wire), ethersBytes);
});

test("bad tensors get typed errors", () => {
  const enc = (t: Partial<NamedTensor>, d = 6) =>
    encodeTensors([{ name: "x", dtype: "float32", shape: [2], data: [1, 2], ...t } as NamedTensor], d);
  assert.throws(() => enc({ shape: [3] }), /holds 3 elements, data has 2/);
  assert.throws(() => enc({ shape: [-1, 2] }), /invalid dimension -1/);
  assert.throws(() => enc({ name: "" }), TensorEncodingError);
  assert.throws(() => enc({}, 19), /decimals must be an integer in 0..18/);
  assert.throws(() => enc({ dtype: "int64", data: [1.5, 2] }), /is not an integer/);
  assert.throws(() => enc({ dtype: "int32", data: [2 ** 31, 0] }), /does not fit int32/);
  assert.throws(() => enc({ dtype: "complex" as never }), /unsupported dtype/);
  assert.throws(
    () =>
      encodeTensors(
        [
          { name: "a", dtype: "int64", shape: [1], data: [1n] },
          { name: "a", dtype: "int64", shape: [1], data: [2n] },
        ],
        0,
      ),
    /appears twice/,
  );
  assert.throws(() => decodeWire("0x1234"), TensorEncodingError);
  // Bytes another implementation might send: well-formed ABI, but not canonical.
  const raw = (t: object) =>
    encodeAbiParameters(TENSOR_ABI, [
      [{ name: "i", dtype: 7, decimals: 0, shape: [1], values: [5n], strings: [], ...t }],
    ]);
  assert.throws(() => decodeWire(raw({ decimals: 3 })), /decimals must be 0 for int64/);
  assert.throws(() => decodeWire(raw({ dtype: 42 })), /unsupported dtype code 42/);
  assert.throws(() => decodeWire(raw({ shape: [2] })), /holds 2 elements, data has 1/);
  assert.throws(() => decodeWire(raw({ strings: ["x"] })), /carries no strings/);
});

test("the fast Tensor[] codec agrees byte for byte with viem, both ways", () => {
  const wireArb = tensorsArb.chain((ts) => fc.constant(ts.map((t) => toWire(t, 6))));
  fc.assert(
    fc.property(wireArb, (wire) => {
      const ours = encodeWire(wire);
      const viems = encodeAbiParameters(TENSOR_ABI, [
        wire.map((w) => ({ ...w, shape: [...w.shape], values: [...w.values], strings: [...w.strings] })),
      ]);
      assert.equal(ours, viems);
      assert.deepEqual(decodeWire(viems), wire);
    }),
    { numRuns: 300 },
  );
});

test("whatever the fast decoder accepts, viem decodes to the same tensors", () => {
  const valid = encodeWire([
    { name: "a", dtype: 1, decimals: 6, shape: [2], values: [1n, -2n], strings: [] },
    { name: "s", dtype: 8, decimals: 0, shape: [1], strings: ["hi"], values: [] },
  ]);
  const bytes = Buffer.from(valid.slice(2), "hex");
  fc.assert(
    fc.property(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
      const mutated = Buffer.from(bytes);
      mutated[at] = value;
      const hex = `0x${mutated.toString("hex")}` as `0x${string}`;
      let ours: unknown;
      try {
        ours = decodeTensorArray(hex);
      } catch (e) {
        assert.ok(e instanceof TensorEncodingError);
        return;
      }
      const [theirs] = decodeAbiParameters(TENSOR_ABI, hex);
      assert.deepEqual(
        ours,
        theirs.map((t) => ({ ...t, shape: [...t.shape], values: [...t.values], strings: [...t.strings] })),
      );
    }),
    { numRuns: 2000 },
  );
});
