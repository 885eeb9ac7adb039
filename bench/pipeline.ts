/**
 * Throughput of the off-chain pipeline: BullMQ job → worker processor → onnxruntime → canonical
 * encoding → output hash (chain writes left out), against a raw `session.run` loop on the same
 * model and inputs, measured side by side in one run.
 *
 *   npm run bench:pipeline            (needs Redis: REDIS_URL, default redis://127.0.0.1:6379)
 *
 * Two models: a realistic MLP (~2.2M weights, over 1 ms per inference) and the tiny Iris demo
 * (microseconds per inference), whose throughput only batching lifts: there each job carries the
 * requests of one block, as the relayer makes them. Prints one JSON object as its last line.
 */
import { Queue, Worker, type Job } from "bullmq";
import * as ort from "onnxruntime-node";
import pino from "pino";
import type { Hex } from "viem";
import {
  encodeTensors,
  inputHash,
  jobId,
  requestToJson,
  sha256Hex,
  type InferenceJob,
  type Request,
} from "../sdk";
import {
  SESSION_OPTIONS,
  WorkerMetrics,
  processJob,
  type Answer,
  type JobSummary,
  type ModelSpec,
  ThreadSession,
  workerConfigSchema,
} from "../inference-worker";
import { buildMlp, mulberry32 } from "../models/onnx";
import fs from "node:fs";
import path from "node:path";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const N = Number(process.env.BENCH_REQUESTS ?? 600);
const BATCH = 32;
const WORKER_CONCURRENCY = workerConfigSchema.shape.CONCURRENCY.parse(undefined);
const LATENCY_SAMPLES = 60;
let inProcessor = 0;

interface Model {
  name: string;
  spec: ModelSpec;
  /** In this thread, for the raw loop. */
  session: ort.InferenceSession;
  /** In a worker thread, as the worker runs it. */
  threaded: ThreadSession;
  width: number;
}

function median(xs: number[]): number {
  return percentile(xs, 50);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function inputs(width: number, n: number, seed: number): { floats: Float32Array[]; bytes: Hex[] } {
  const rand = mulberry32(seed);
  const floats: Float32Array[] = [];
  const bytes: Hex[] = [];
  for (let i = 0; i < n; i++) {
    const row = Float32Array.from({ length: width }, () => Math.fround(rand() * 8 - 2));
    floats.push(row);
    bytes.push(encodeTensors([{ name: "input", dtype: "float32", shape: [1, width], data: row }], 6));
  }
  return { floats, bytes };
}

function job(model: Model, inputsBytes: Hex[], firstId: number): InferenceJob {
  return {
    chainId: 31337,
    hub: "0x0000000000000000000000000000000000000F10",
    modelId: model.spec.modelId,
    items: inputsBytes.map((input, k) => {
      const request: Request = {
        requestId: BigInt(firstId + k),
        modelId: model.spec.modelId,
        requester: "0x00000000000000000000000000000000000000aa",
        callbackGasLimit: 0,
        deadline: 9_999_999_999n,
        fee: 1n,
        inputHash: inputHash(input),
        inputIsRef: false,
        redundancy: 1,
      };
      return {
        request: requestToJson(request),
        input,
        blockNumber: "1",
        txHash: `0x${"00".repeat(32)}`,
        logIndex: k,
      };
    }),
  };
}

/** A worker whose writer only counts: the chain is left out of this benchmark. */
function startWorker(
  queueName: string,
  model: Model,
  concurrency: number,
  onDone: (job: Job<InferenceJob, JobSummary>) => void,
) {
  const loaded = { spec: model.spec, session: model.threaded };
  const deps = {
    // One loaded model, as the worker's cache holds it: its runner is shared by every job.
    models: { get: async () => loaded },
    writer: {
      submit: async (answers: readonly Answer[]) => ({
        outcomes: new Map(answers.map((a) => [a.request.requestId, "landed" as const])),
      }),
    },
    metrics: new WorkerMetrics(false),
    logger: pino({ level: "silent" }),
    maxInputBytes: 1 << 24,
  };
  const worker = new Worker<InferenceJob, JobSummary>(
    queueName,
    async (j) => {
      const t = performance.now();
      try {
        return await processJob(j, deps);
      } finally {
        inProcessor += performance.now() - t;
      }
    },
    {
      connection: { url: REDIS_URL, maxRetriesPerRequest: null },
      concurrency,
    },
  );
  worker.on("completed", onDone);
  worker.on("failed", (_j, err) => {
    console.error(`benchmark job failed: ${err.message}`);
    process.exit(1);
  });
  return worker;
}

async function rawLoop(model: Model, floats: Float32Array[]): Promise<{ rate: number; p50Ms: number }> {
  const times: number[] = [];
  const started = performance.now();
  for (const row of floats) {
    const t = performance.now();
    await model.session.run({ input: new ort.Tensor("float32", row, [1, model.width]) });
    times.push(performance.now() - t);
  }
  return { rate: floats.length / ((performance.now() - started) / 1000), p50Ms: percentile(times, 50) };
}

async function pipelineRate(
  model: Model,
  bytes: Hex[],
  perJob: number,
  concurrency: number,
): Promise<number> {
  const queueName = `gradnet-bench-${process.pid}-${model.name}-${perJob}-${concurrency}`;
  const queue = new Queue<InferenceJob>(queueName, { connection: { url: REDIS_URL } });
  let requests = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const worker = startWorker(queueName, model, concurrency, (j) => {
    requests += j.data.items.length;
    if (requests >= bytes.length) done();
  });
  await worker.waitUntilReady();
  const jobs = [];
  for (let i = 0; i < bytes.length; i += perJob) {
    jobs.push({
      name: "infer",
      data: job(model, bytes.slice(i, i + perJob), i + 1),
      opts: { jobId: jobId(31337, BigInt(i + 1)) },
    });
  }
  const started = performance.now();
  await queue.addBulk(jobs);
  await finished;
  const elapsed = performance.now() - started;
  const rate = bytes.length / (elapsed / 1000);
  console.error(
    `${model.name} ${perJob}/job c${concurrency}: ${elapsed.toFixed(0)} ms wall, ${inProcessor.toFixed(0)} ms in processJob`,
  );
  inProcessor = 0;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return rate;
}

async function latency(model: Model, bytes: Hex[]): Promise<number[]> {
  const queueName = `gradnet-bench-${process.pid}-${model.name}-latency`;
  const queue = new Queue<InferenceJob>(queueName, { connection: { url: REDIS_URL } });
  const waiting = new Map<string, () => void>();
  const worker = startWorker(queueName, model, 1, (j) => waiting.get(j.id!)?.());
  await worker.waitUntilReady();
  const samples: number[] = [];
  for (let i = 0; i < Math.min(LATENCY_SAMPLES, bytes.length); i++) {
    const id = jobId(31337, BigInt(i + 1));
    const completed = new Promise<void>((r) => waiting.set(id, r));
    const t = performance.now();
    await queue.add("infer", job(model, [bytes[i]!], i + 1), { jobId: id });
    await completed;
    samples.push(performance.now() - t);
  }
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return samples;
}

async function benchModel(model: Model, seed: number) {
  const { floats, bytes } = inputs(model.width, N, seed);
  await rawLoop(model, floats.slice(0, 50)); // warm-up
  // Raw runs interleaved with the pipeline runs, so that both see the same machine; the
  // baseline is their median.
  const raws = [await rawLoop(model, floats)];
  // The worker's default concurrency: BullMQ's round trips overlap inference (runs themselves
  // stay one at a time per model; see inference-worker/runner.ts).
  const single = await pipelineRate(model, bytes, 1, WORKER_CONCURRENCY);
  raws.push(await rawLoop(model, floats));
  const singleC1 = await pipelineRate(model, bytes, 1, 1);
  raws.push(await rawLoop(model, floats));
  const batched = await pipelineRate(model, bytes, BATCH, WORKER_CONCURRENCY);
  const raw = { rate: median(raws.map((r) => r.rate)), p50Ms: median(raws.map((r) => r.p50Ms)) };
  const lat = await latency(model, bytes);
  return {
    model: model.name,
    requests: N,
    rawRunsPerSec: Math.round(raw.rate),
    rawRunP50Ms: +raw.p50Ms.toFixed(4),
    workerConcurrency: WORKER_CONCURRENCY,
    pipelinePerSec: Math.round(single),
    pipelineConcurrency1PerSec: Math.round(singleC1),
    pipelineBatchedPerSec: Math.round(batched),
    ratio: +(single / raw.rate).toFixed(3),
    concurrency1Ratio: +(singleC1 / raw.rate).toFixed(3),
    batchedRatio: +(batched / raw.rate).toFixed(3),
    p50LatencyMs: +percentile(lat, 50).toFixed(3),
    p50AddedLatencyMs: +(percentile(lat, 50) - raw.p50Ms).toFixed(3),
  };
}

async function main(): Promise<void> {
  const realisticBytes = buildMlp({
    name: "bench-mlp",
    inputName: "input",
    outputName: "scores",
    sizes: [256, 4096, 4096, 16],
    seed: 7,
    batch: "dynamic",
    activation: "Relu",
  });
  const realistic: Model = {
    name: "mlp-17.9M",
    width: 256,
    session: await ort.InferenceSession.create(realisticBytes, SESSION_OPTIONS),
    threaded: await ThreadSession.create(realisticBytes, SESSION_OPTIONS),
    spec: {
      modelId: sha256Hex(realisticBytes),
      decimals: 6,
      inputs: [{ name: "input", dtype: 1, shape: [-1, 256] }],
      outputs: [{ name: "scores", dtype: 1, shape: [-1, 16] }],
    },
  };
  const manifest = JSON.parse(
    fs.readFileSync(path.join(__dirname, "..", "models", "manifest.json"), "utf8"),
  ) as {
    models: {
      name: string;
      file: string;
      sha256: Hex;
      schema: { inputs: ModelSpec["inputs"]; outputs: ModelSpec["outputs"] };
    }[];
  };
  const iris = manifest.models.find((m) => m.name === "iris-mlp")!;
  const tiny: Model = {
    name: "iris-mlp",
    width: 4,
    session: await ort.InferenceSession.create(
      path.join(__dirname, "..", "models", iris.file),
      SESSION_OPTIONS,
    ),
    threaded: await ThreadSession.create(
      fs.readFileSync(path.join(__dirname, "..", "models", iris.file)),
      SESSION_OPTIONS,
    ),
    spec: { modelId: iris.sha256, decimals: 6, inputs: iris.schema.inputs, outputs: iris.schema.outputs },
  };

  const r = await benchModel(realistic, 1);
  console.log(`realistic ${JSON.stringify(r)}`);
  const t = await benchModel(tiny, 2);
  console.log(`tiny      ${JSON.stringify(t)}`);
  console.log(
    JSON.stringify({
      bench: "pipeline",
      ratio: r.ratio,
      tinyRatio: t.batchedRatio,
      tinyUnbatchedRatio: t.ratio,
      p50AddedLatencyMs: r.p50AddedLatencyMs,
      tinyP50AddedLatencyMs: t.p50AddedLatencyMs,
      batchSize: BATCH,
      realistic: r,
      tiny: t,
      targets: { ratioAtLeast0_9: r.ratio >= 0.9 },
    }),
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
