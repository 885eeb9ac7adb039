import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { onnx } from "onnx-proto";
import {
  InvalidContentHashError,
  InvalidOnnxModelError,
  ModelStore,
  isContentHash,
  validateOnnx,
} from "../../node/store";

const MODELS_DIR = path.join(__dirname, "..", "..", "models");
const IRIS = readFileSync(path.join(MODELS_DIR, "iris-mlp.onnx"));
const TINY = readFileSync(path.join(MODELS_DIR, "tiny-relu.onnx"));
const sha256 = (b: Uint8Array) => "0x" + createHash("sha256").update(b).digest("hex");

/** y = x + w, with `w` as an initializer: inline, or (`external`) in a side file. */
function addModel(opts: { external?: "location" | "entries" | "attribute" | "subgraph" } = {}): Buffer {
  const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;
  const inline = { name: "w", dataType: onnx.TensorProto.DataType.FLOAT, dims: [1], floatData: [1] };
  const external =
    opts.external === "entries"
      ? { name: "w", dataType: 1, dims: [1], externalData: [{ key: "location", value: "weights.bin" }] }
      : { name: "w", dataType: 1, dims: [1], dataLocation: EXTERNAL };
  const w = opts.external === "location" || opts.external === "entries" ? external : inline;
  const nodes: onnx.INodeProto[] = [{ opType: "Add", input: ["x", "w"], output: ["y"], name: "add" }];
  if (opts.external === "attribute") {
    nodes.unshift({
      opType: "Constant",
      output: ["c"],
      name: "const",
      attribute: [{ name: "value", type: onnx.AttributeProto.AttributeType.TENSOR, t: external }],
    });
  }
  if (opts.external === "subgraph") {
    const branch: onnx.IGraphProto = {
      name: "then",
      node: [{ opType: "Identity", input: ["w2"], output: ["z"] }],
      initializer: [{ ...external, name: "w2" }],
      output: [{ name: "z" }],
    };
    nodes.push({
      opType: "If",
      input: ["cond"],
      output: ["z"],
      name: "if",
      attribute: [
        { name: "then_branch", type: onnx.AttributeProto.AttributeType.GRAPH, g: branch },
        { name: "else_branch", type: onnx.AttributeProto.AttributeType.GRAPH, g: branch },
      ],
    });
  }
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    producerName: "node-store.test",
    graph: {
      name: "add",
      node: nodes,
      initializer: [w],
      input: [{ name: "x" }],
      output: [{ name: "y" }],
    },
  });
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

function refused(bytes: Uint8Array, reason: RegExp): void {
  assert.throws(
    () => validateOnnx(bytes),
    (err: unknown) => {
      assert.ok(err instanceof InvalidOnnxModelError, `InvalidOnnxModelError, got ${String(err)}`);
      assert.equal(err.code, "INVALID_ONNX_MODEL");
      assert.match(err.reason, reason);
      return true;
    },
  );
}

describe("model store", () => {
  let dir: string;
  let store: ModelStore;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "gradnet-store-"));
    store = new ModelStore(dir);
    await store.init();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("put returns the sha256; get returns the same bytes", async () => {
    const put = await store.put(IRIS);
    assert.deepEqual(put, { sha256: sha256(IRIS), size: IRIS.length, created: true });
    assert.ok(await store.has(put.sha256));
    assert.deepEqual(await store.get(put.sha256), IRIS);
    const opened = await store.open(put.sha256);
    assert.ok(opened);
    assert.equal(opened.size, IRIS.length);
    const chunks: Buffer[] = [];
    for await (const c of opened.stream) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), IRIS);
  });

  test("put is idempotent and leaves no temp files", async () => {
    const a = await store.put(TINY);
    const b = await store.put(TINY);
    const [c, d] = await Promise.all([store.put(Buffer.from("same")), store.put(Buffer.from("same"))]);
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    assert.equal(a.sha256, b.sha256);
    assert.equal(c.sha256, d.sha256);
    assert.deepEqual(await store.get(a.sha256), TINY);
    assert.deepEqual(readdirSync(path.join(dir, "tmp")), []);
  });

  test("files live under their hash", async () => {
    const { sha256: h } = await store.put(Buffer.from("layout"));
    assert.equal(store.pathOf(h), path.join(dir, h.slice(2, 4), h.slice(2)));
  });

  test("an absent hash is undefined, not an error", async () => {
    const absent = `0x${"0".repeat(64)}`;
    assert.equal(await store.has(absent), false);
    assert.equal(await store.get(absent), undefined);
    assert.equal(await store.open(absent), undefined);
  });

  test("malformed hashes are refused before touching the disk (no path traversal)", async () => {
    for (const bad of [
      "../../etc/passwd",
      "0x" + "a".repeat(63),
      "0x" + "A".repeat(64),
      "a".repeat(64),
      "0x" + "a".repeat(62) + "/.",
      "0x" + "a".repeat(64) + "\0",
      "",
    ]) {
      assert.equal(isContentHash(bad), false, bad);
      await assert.rejects(store.get(bad), InvalidContentHashError, bad);
      await assert.rejects(store.has(bad), InvalidContentHashError, bad);
      assert.throws(() => store.pathOf(bad), InvalidContentHashError, bad);
    }
  });
});

describe("validateOnnx", () => {
  test("accepts the demo models and summarises them", () => {
    const s = validateOnnx(IRIS);
    assert.equal(s.irVersion, 8);
    assert.deepEqual(s.inputs, ["input"]);
    assert.deepEqual(s.outputs, ["probabilities", "label"]);
    assert.ok(s.nodes > 0);
    assert.ok(s.initializers > 0);
    assert.deepEqual(validateOnnx(TINY).inputs, ["x"]);
    assert.equal(validateOnnx(addModel()).nodes, 1, "the test model itself is valid when inline");
  });

  test("refuses bytes that are not a model", () => {
    refused(new Uint8Array(0), /empty/);
    refused(Buffer.from("hello, I am not an ONNX file"), /decode|graph|ir_version|opset/);
    refused(Buffer.from(JSON.stringify({ graph: { node: [] } })), /decode|graph|ir_version|opset/);
    refused(Buffer.alloc(256, 0xff), /decode/);
    let seed = 42;
    for (let i = 0; i < 20; i++) {
      const junk = Buffer.alloc(512);
      for (let j = 0; j < junk.length; j++) junk[j] = (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
      refused(junk, /./);
    }
  });

  test("refuses every truncation of a valid model", () => {
    for (let cut = 1; cut < IRIS.length; cut += 13) refused(IRIS.subarray(0, cut), /./);
    refused(IRIS.subarray(0, IRIS.length - 1), /decode/);
  });

  test("refuses models with external data, naming the tensor", () => {
    refused(addModel({ external: "location" }), /"w".*external/);
    refused(addModel({ external: "entries" }), /"w".*external/);
    refused(addModel({ external: "attribute" }), /attribute value.*external/);
    refused(addModel({ external: "subgraph" }), /"w2".*subgraph.*external/);
  });

  test("refuses graphs without nodes, inputs or outputs", () => {
    const base = onnx.ModelProto.decode(addModel());
    const variant = (edit: (g: onnx.IGraphProto) => void, m: onnx.IModelProto = {}) => {
      const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(base).finish());
      Object.assign(copy, m);
      if (copy.graph) edit(copy.graph);
      return onnx.ModelProto.encode(copy).finish();
    };
    refused(
      variant((g) => (g.node = [])),
      /no nodes/,
    );
    refused(
      variant((g) => (g.input = [])),
      /no inputs/,
    );
    refused(
      variant((g) => (g.output = [])),
      /no outputs/,
    );
    refused(
      variant(() => {}, { graph: null }),
      /no graph/,
    );
    refused(
      variant(() => {}, { opsetImport: [] }),
      /opset/,
    );
  });
});
