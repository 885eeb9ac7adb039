import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import pino from "pino";
import { keccak256, sha256, hexToString, type Hex } from "viem";
import {
  InputSchemaError,
  ModelHashMismatchError,
  ResultStatus,
  decodeTensors,
  encodeTensors,
  encodeWire,
  decodeWire,
  requestToJson,
  type InferenceJob,
  type NamedTensor,
  type Request,
} from "../../sdk";
import {
  ConfigError,
  ModelRunner,
  SESSION_OPTIONS,
  computeAnswer,
  corruptOutput,
  fetchCommittedInput,
  InputHashMismatchError,
  ThreadSession,
  WorkerMetrics,
  fromOrtOutputs,
  localSession,
  parseWorkerConfig,
  prepareInputs,
  processJob,
  runBatch,
  runOne,
  type Answer,
  type LoadedModel,
  type ModelSpec,
} from "../../inference-worker";
import manifest from "../../models/manifest.json";

const iris = manifest.models.find((m) => m.name === "iris-mlp")!;
const IRIS_SPEC: ModelSpec = {
  modelId: iris.sha256 as Hex,
  decimals: iris.decimals,
  inputs: iris.schema.inputs,
  outputs: iris.schema.outputs,
};
const IRIS_FILE = path.join(__dirname, "../../models/iris-mlp.onnx");
const loadIris = async () => localSession(await ort.InferenceSession.create(IRIS_FILE, SESSION_OPTIONS));
const irisInput = (rows: number[][]) =>
  encodeTensors([{ name: "input", dtype: "float32", shape: [rows.length, 4], data: rows.flat() }], 6);

test("prepareInputs converts fixed-point to float32 and names the bad tensor", () => {
  const [p] = prepareInputs(IRIS_SPEC, decodeWire(irisInput([[5.1, 3.5, 1.4, 0.2]])));
  assert.equal(p!.type, "float32");
  assert.deepEqual(p!.dims, [1, 4]);
  assert.deepEqual(Array.from(p!.data as Float32Array), [5.1, 3.5, 1.4, 0.2].map(Math.fround));

  const bad = (tensors: NamedTensor[], re: RegExp) =>
    assert.throws(
      () => prepareInputs(IRIS_SPEC, decodeWire(encodeTensors(tensors, 6))),
      (e: unknown) => e instanceof InputSchemaError && re.test(e.message),
    );
  bad(
    [{ name: "input", dtype: "float32", shape: [1, 3], data: [1, 2, 3] }],
    /input "input": shape \[1, 3\] does not fit \[-1, 4\] at axis 1/,
  );
  bad([{ name: "input", dtype: "float32", shape: [4], data: [1, 2, 3, 4] }], /has rank 1/);
  bad(
    [{ name: "input", dtype: "int64", shape: [1, 4], data: [1n, 2n, 3n, 4n] }],
    /dtype int64 given, the model takes float32/,
  );
  bad(
    [{ name: "x", dtype: "float32", shape: [1, 4], data: [1, 2, 3, 4] }],
    /input "x": the model has no input of this name/,
  );
  bad(
    [
      { name: "input", dtype: "float32", shape: [1, 4], data: [1, 2, 3, 4] },
      { name: "extra", dtype: "float32", shape: [1], data: [1] },
    ],
    /input "extra"/,
  );
  bad([{ name: "input", dtype: "float32", shape: [0, 4], data: [] }], /at axis 0/);
  assert.throws(() => prepareInputs(IRIS_SPEC, []), /input "input": missing/);
});

test("runOne gives the canonical encoding of a direct onnxruntime run", async () => {
  const session = await loadIris();
  const input = irisInput([[6.7, 3.0, 5.2, 2.3]]);
  const result = await runOne(session, IRIS_SPEC, prepareInputs(IRIS_SPEC, decodeWire(input)));
  const ortSession = await ort.InferenceSession.create(IRIS_FILE, SESSION_OPTIONS);
  const direct = await ortSession.run({
    input: new ort.Tensor("float32", Float32Array.from([6.7, 3.0, 5.2, 2.3]), [1, 4]),
  });
  const expected = encodeTensors(fromOrtOutputs(direct, ortSession.outputNames), 6);
  assert.equal(result.output, expected);
  assert.equal(result.outputHash, keccak256(expected));
  const out = decodeTensors(result.output);
  assert.deepEqual(
    out.map((t) => t.name),
    ["label", "probabilities"],
  );
  assert.deepEqual(out[0]!.data, [2n]); // virginica
});

test("a model in a worker thread gives the same bytes, and a runner batches concurrent requests", async () => {
  const local = await loadIris();
  const threaded = await ThreadSession.create(fs.readFileSync(IRIS_FILE), SESSION_OPTIONS);
  try {
    const sizes: number[] = [];
    const runner = new ModelRunner({ spec: IRIS_SPEC, session: threaded }, 64, (n) => sizes.push(n));
    const rows = Array.from({ length: 20 }, (_, i) => [
      4.4 + i * 0.17,
      2.5 + (i % 3) * 0.4,
      1.2 + i * 0.28,
      0.2 + i * 0.11,
    ]);
    const items = rows.map((r) => prepareInputs(IRIS_SPEC, decodeWire(irisInput([r]))));
    const viaRunner = await Promise.all(items.map((p) => runner.run(p)));
    for (let i = 0; i < items.length; i++) {
      assert.equal(viaRunner[i]!.output, (await runOne(local, IRIS_SPEC, items[i]!)).output, `row ${i}`);
    }
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      rows.length,
    );
    assert.ok(sizes.length < rows.length, `requests were batched: ${sizes.join(",")}`);
  } finally {
    await threaded.close();
  }
  await assert.rejects(
    ThreadSession.create(new Uint8Array([1, 2, 3]), SESSION_OPTIONS),
    /protobuf|parse|load/i,
  );
});

test("a batch gives, bit for bit, the hashes of one-by-one runs", async () => {
  const session = await loadIris();
  const rows = Array.from({ length: 12 }, (_, i) => [
    4.5 + i * 0.21,
    2.2 + (i % 5) * 0.3,
    1 + i * 0.47,
    0.1 + i * 0.19,
  ]);
  const items = rows.map((r) => prepareInputs(IRIS_SPEC, decodeWire(irisInput([r]))));
  const batched = await runBatch(session, IRIS_SPEC, items);
  for (let i = 0; i < items.length; i++) {
    assert.equal(
      batched[i]!.outputHash,
      (await runOne(session, IRIS_SPEC, items[i]!)).outputHash,
      `row ${i}`,
    );
  }
});

// ------------------------------------------------------------------------- processJob

function request(id: bigint, input: Hex): Request {
  return {
    requestId: id,
    modelId: IRIS_SPEC.modelId,
    requester: "0x00000000000000000000000000000000000000aa",
    callbackGasLimit: 0,
    deadline: 9_999_999_999n,
    fee: 1n,
    inputHash: sha256(input),
    inputIsRef: false,
    redundancy: 1,
  };
}

function job(
  inputs: Hex[],
  attempts = 3,
): { data: InferenceJob; attemptsMade: number; opts: { attempts: number } } {
  return {
    data: {
      chainId: 31337,
      hub: "0x0000000000000000000000000000000000000F10",
      modelId: IRIS_SPEC.modelId,
      items: inputs.map((input, i) => ({
        request: requestToJson(request(BigInt(i + 1), input)),
        input,
        blockNumber: "1",
        txHash: `0x${"00".repeat(32)}`,
        logIndex: i,
      })),
    },
    attemptsMade: 0,
    opts: { attempts },
  };
}

async function deps(models: { get(): Promise<LoadedModel> }) {
  const submitted: Answer[][] = [];
  return {
    submitted,
    deps: {
      models,
      writer: {
        async submit(answers: readonly Answer[]) {
          submitted.push([...answers]);
          return {
            txHash: "0x01" as Hex,
            outcomes: new Map(answers.map((a) => [a.request.requestId, "landed" as const])),
          };
        },
      },
      metrics: new WorkerMetrics(false),
      logger: pino({ level: "silent" }),
      maxInputBytes: 1 << 20,
    },
  };
}

test("processJob answers good and bad inputs of one job in one submission", async () => {
  const session = await loadIris();
  const { deps: d, submitted } = await deps({ get: async () => ({ spec: IRIS_SPEC, session }) });
  const good = irisInput([[5.1, 3.5, 1.4, 0.2]]);
  const wrongShape = encodeTensors([{ name: "input", dtype: "float32", shape: [1, 3], data: [1, 2, 3] }], 6);
  const notTensors: Hex = "0xdeadbeef";
  const summary = await processJob(job([good, wrongShape, notTensors]), d);
  assert.equal(submitted.length, 1);
  const [a, b, c] = submitted[0]!;
  assert.equal(a!.status, ResultStatus.Success);
  assert.equal(a!.outputHash, keccak256(a!.output));
  assert.equal(decodeTensors(a!.output).find((t) => t.name === "label")!.data[0], 0n);
  assert.equal(b!.status, ResultStatus.InvalidInput);
  assert.match(hexToString(b!.output), /input "input": shape \[1, 3\] does not fit/);
  assert.equal(b!.outputHash, keccak256(b!.output));
  assert.equal(c!.status, ResultStatus.InvalidInput);
  assert.match(hexToString(c!.output), /not abi.encode\(Tensor\[\]\)/);
  assert.deepEqual(
    summary.results.map((r) => r.status),
    ["Success", "InvalidInput", "InvalidInput"],
  );
});

test("a job whose only request is refused is answered on chain, then fails without retry", async () => {
  const session = await loadIris();
  const { deps: d, submitted } = await deps({ get: async () => ({ spec: IRIS_SPEC, session }) });
  await assert.rejects(processJob(job(["0x00"]), d), (e: Error) => e.name === "UnrecoverableError");
  assert.equal(submitted[0]![0]!.status, ResultStatus.InvalidInput);
});

test("model bytes that do not match their id are never run: every request gets ModelFailed", async () => {
  const { deps: d, submitted } = await deps({
    get: async () => {
      throw new ModelHashMismatchError(IRIS_SPEC.modelId, "0xbad", "http://store/models/x");
    },
  });
  await assert.rejects(
    processJob(job([irisInput([[1, 2, 3, 4]]), irisInput([[1, 2, 3, 4]])]), d),
    /ModelFailed/,
  );
  assert.deepEqual(
    submitted[0]!.map((a) => a.status),
    [ResultStatus.ModelFailed, ResultStatus.ModelFailed],
  );
  assert.match(hexToString(submitted[0]![0]!.output), /not the registered id/);
});

test("a transient failure loading the model is retried, not answered", async () => {
  const { deps: d, submitted } = await deps({
    get: async () => {
      throw new Error("ECONNREFUSED 127.0.0.1:8545");
    },
  });
  await assert.rejects(processJob(job([irisInput([[1, 2, 3, 4]])]), d), /ECONNREFUSED/);
  assert.equal(submitted.length, 0);
});

test("config: env and flags, with the bad field named", () => {
  const key = `0x${"11".repeat(32)}`;
  const c = parseWorkerConfig({ WORKER_PRIVATE_KEY: key, CONCURRENCY: "3" }, [
    "--concurrency",
    "5",
    "--queue-name",
    "q",
  ]);
  assert.equal(c.CONCURRENCY, 5);
  assert.equal(c.QUEUE_NAME, "q");
  assert.equal(c.RPC_URL, "http://127.0.0.1:8545");
  assert.throws(
    () => parseWorkerConfig({}),
    (e: unknown) => e instanceof ConfigError && /WORKER_PRIVATE_KEY/.test(e.message),
  );
  assert.throws(() => parseWorkerConfig({ WORKER_PRIVATE_KEY: key, CONCURRENCY: "zero" }), /CONCURRENCY/);
  assert.throws(() => parseWorkerConfig({ WORKER_PRIVATE_KEY: key }, ["--nope", "1"]), /flags/);
});

test("a job whose input is not the committed one fails without answering on chain", async () => {
  const session = await loadIris();
  const { deps: d, submitted } = await deps({ get: async () => ({ spec: IRIS_SPEC, session }) });
  const j = job([irisInput([[5.1, 3.5, 1.4, 0.2]])]);
  j.data.items[0]!.input = irisInput([[6.7, 3.0, 5.2, 2.3]]);
  await assert.rejects(processJob(j, d), (e: Error & { code?: string }) => e.code === "JOB_INPUT_MISMATCH");
  assert.equal(submitted.length, 0);
});

// ------------------------------------------------------------- computeAnswer and the fault switch

test("computeAnswer is the processor's answer: same bytes, same hash, same refusals", async () => {
  const session = await loadIris();
  const model = { spec: IRIS_SPEC, session };
  const input = irisInput([[6.7, 3.0, 5.2, 2.3]]);
  const answer = await computeAnswer(model, input);
  const { deps: d, submitted } = await deps({ get: async () => model });
  await processJob(job([input]), d);
  assert.equal(answer.status, "Success");
  assert.ok(answer.status === "Success");
  assert.equal(answer.output, submitted[0]![0]!.output);
  assert.equal(answer.outputHash, submitted[0]![0]!.outputHash);
  assert.equal(answer.outputHash, keccak256(answer.output));

  const wrongShape = encodeTensors([{ name: "input", dtype: "float32", shape: [1, 3], data: [1, 2, 3] }], 6);
  const refused = await computeAnswer(model, wrongShape);
  assert.ok(refused.status === "InvalidInput", refused.status);
  assert.match(refused.reason, /does not fit \[-1, 4\]/);
  const failing = await computeAnswer(model, input, {
    run: async () => {
      throw new Error("out of memory");
    },
  });
  assert.deepEqual(failing, {
    status: "ModelFailed",
    reason: "the model failed on this input: out of memory",
  });
});

test("fetchCommittedInput returns the stored bytes only when they hash to the commitment", async () => {
  const input = irisInput([[5.1, 3.5, 1.4, 0.2]]);
  const bytes = Buffer.from(input.slice(2), "hex");
  const fetch = async () => new Uint8Array(bytes);
  assert.equal(await fetchCommittedInput("http://store/x", sha256(input), 1 << 20, fetch), input);
  await assert.rejects(
    fetchCommittedInput("http://store/x", sha256("0x00"), 1 << 20, fetch),
    (e: unknown) => e instanceof InputHashMismatchError && /not the committed/.test(e.message),
  );
});

test("corruptOutput: a self-consistent answer one step off in the first element", async () => {
  const session = await loadIris();
  const honest = await runOne(
    session,
    IRIS_SPEC,
    prepareInputs(IRIS_SPEC, decodeWire(irisInput([[5.1, 3.5, 1.4, 0.2]]))),
  );
  const bad = corruptOutput(honest.output);
  assert.notEqual(bad.outputHash, honest.outputHash);
  assert.equal(bad.outputHash, keccak256(bad.output));
  assert.deepEqual(corruptOutput(honest.output), bad, "deterministic");
  const [label, probs] = decodeWire(bad.output);
  const [label0, probs0] = decodeWire(honest.output);
  assert.equal(label!.name, "label");
  assert.deepEqual(label!.values, [label0!.values[0]! + 1n]);
  assert.deepEqual(probs, probs0, "only the first element moves");

  const wire = (dtype: number, values: bigint[], strings: string[] = []) =>
    encodeWire([
      { name: "y", dtype, decimals: 0, shape: [Math.max(values.length, strings.length)], values, strings },
    ]);
  const first = (hex: Hex) => decodeWire(corruptOutput(hex).output)[0]!;
  assert.deepEqual(first(wire(9, [1n, 0n])).values, [0n, 0n], "a bool flips");
  assert.deepEqual(first(wire(9, [0n])).values, [1n]);
  assert.deepEqual(first(wire(7, [2n ** 63n - 1n])).values, [2n ** 63n - 2n], "an int stays in range");
  assert.deepEqual(first(wire(8, [], ["a", "b"])).strings, ["a!", "b"]);
  const empty = encodeWire([{ name: "y", dtype: 1, decimals: 6, shape: [0], values: [], strings: [] }]);
  assert.notEqual(corruptOutput(empty).outputHash, keccak256(empty), "even an empty output changes");
});

test("FAULT_CORRUPT_OUTPUTS: the processor posts corrupted successes and honest refusals", async () => {
  const session = await loadIris();
  const model = { spec: IRIS_SPEC, session };
  const { deps: d, submitted } = await deps({ get: async () => model });
  const good = irisInput([[6.7, 3.0, 5.2, 2.3]]);
  await processJob(job([good, "0xdeadbeef"]), { ...d, corruptOutputs: true });
  const [a, b] = submitted[0]!;
  const honest = await computeAnswer(model, good);
  assert.ok(honest.status === "Success");
  assert.equal(a!.status, ResultStatus.Success);
  assert.deepEqual({ output: a!.output, outputHash: a!.outputHash }, corruptOutput(honest.output));
  assert.equal(b!.status, ResultStatus.InvalidInput, "error answers are not corrupted");

  const key = `0x${"11".repeat(32)}`;
  assert.equal(parseWorkerConfig({ WORKER_PRIVATE_KEY: key }).FAULT_CORRUPT_OUTPUTS, false);
  assert.equal(
    parseWorkerConfig({ WORKER_PRIVATE_KEY: key, FAULT_CORRUPT_OUTPUTS: "true" }).FAULT_CORRUPT_OUTPUTS,
    true,
  );
  assert.equal(
    parseWorkerConfig({ WORKER_PRIVATE_KEY: key }, ["--fault-corrupt-outputs", "1"]).FAULT_CORRUPT_OUTPUTS,
    true,
  );
  assert.equal(
    parseWorkerConfig({ WORKER_PRIVATE_KEY: key, FAULT_CORRUPT_OUTPUTS: "0" }).FAULT_CORRUPT_OUTPUTS,
    false,
  );
  assert.throws(
    () => parseWorkerConfig({ WORKER_PRIVATE_KEY: key, FAULT_CORRUPT_OUTPUTS: "yes" }),
    (e: unknown) => e instanceof ConfigError && e.field === "FAULT_CORRUPT_OUTPUTS",
  );
});
