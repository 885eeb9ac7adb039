/**
 * The BullMQ processor: one job = the requests of one model from one block. Load the model,
 * check each input, run them (together when the model has a batch axis), and post every
 * answer, errors included, so that no request is left without an answer or a refund.
 */
import { UnrecoverableError } from "bullmq";
import { stringToHex, type Hex } from "viem";
import type { Logger } from "pino";
import {
  GradnetError,
  ModelHashMismatchError,
  ResultStatus,
  inputHash,
  outputHash,
  requestFromJson,
  type InferenceJobItem,
  type InferenceJob,
  type Request,
  type ResultStatusName,
} from "../sdk";
import { InputHashMismatchError, computeAnswer, fetchCommittedInput } from "./answer";
import { corruptOutput } from "./fault";
import { FetchError, fetchBytes } from "./fetch";
import type { EncodedResult } from "./inference";
import { ModelRunner } from "./runner";
import { ModelSchemaError, type LoadedModel } from "./modelCache";
import type { WorkerMetrics } from "./metrics";
import type { Answer, Outcome, WriteResult } from "./writer";

export interface ProcessorDeps {
  models: { get(modelId: Hex): Promise<LoadedModel> };
  /** Most requests in one `session.run` (default 32). */
  maxBatch?: number;
  writer: { submit(answers: readonly Answer[]): Promise<WriteResult> };
  metrics: WorkerMetrics;
  logger: Logger;
  maxInputBytes: number;
  fetchInput?: (uri: string, maxBytes: number) => Promise<Uint8Array>;
  /**
   * Testing aid (`FAULT_CORRUPT_OUTPUTS`): post every successful answer deliberately wrong
   * (`corruptOutput`), so verifiers have something to challenge.
   */
  corruptOutputs?: boolean;
}

/** What BullMQ hands the processor, reduced to what it uses. */
export interface JobLike {
  id?: string;
  data: InferenceJob;
  attemptsMade: number;
  opts: { attempts?: number };
}

export interface JobSummary {
  txHash?: Hex;
  results: { requestId: string; status: ResultStatusName; outcome: Outcome; outputHash: Hex }[];
}

const MAX_REASON = 512;

/** A request answered with an error status; the reason goes on chain as UTF-8. */
class Refusal {
  constructor(
    readonly status: ResultStatusName,
    readonly reason: string,
  ) {}
}

function errorAnswer(request: Request, refusal: Refusal): Answer {
  const output = stringToHex(refusal.reason.slice(0, MAX_REASON));
  return { request, status: ResultStatus[refusal.status], output, outputHash: outputHash(output) };
}

export async function processJob(job: JobLike, deps: ProcessorDeps): Promise<JobSummary> {
  const { metrics } = deps;
  const log = deps.logger.child({ jobId: job.id, modelId: job.data.modelId });
  const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  const requests = job.data.items.map((i) => requestFromJson(i.request));

  // The model: refused bytes or a broken graph answer every request with ModelFailed.
  let model: LoadedModel | Refusal;
  try {
    model = await metrics.time("load_model", () => deps.models.get(job.data.modelId));
  } catch (err) {
    model = modelRefusal(err, lastAttempt);
    metrics.errors.inc({ kind: (err as GradnetError).code ?? "model_load" });
  }

  const refusals = new Map<number, Refusal>();
  const results = new Map<number, EncodedResult>();
  if (model instanceof Refusal) {
    requests.forEach((_, i) => refusals.set(i, model as Refusal));
  } else {
    // Every request goes through the same `computeAnswer` a verifier runs; the runner batches
    // the ones that reach it together.
    const loaded = model;
    const runner = runnerFor(loaded, deps);
    const options = {
      run: (inputs: Parameters<ModelRunner["run"]>[0]) => runner.run(inputs),
      time: <T>(stage: "validate" | "run", fn: () => Promise<T>) => metrics.time(stage, fn),
    };
    await Promise.all(
      job.data.items.map(async (item, i) => {
        let bytes: Hex;
        try {
          bytes = await inputBytes(item, deps, lastAttempt);
        } catch (err) {
          if (err instanceof Refusal) return void refusals.set(i, err);
          throw err;
        }
        const answer = await computeAnswer(loaded, bytes, options);
        if (answer.status !== "Success") {
          if (answer.status === "ModelFailed") metrics.errors.inc({ kind: "model_run" });
          refusals.set(i, new Refusal(answer.status, answer.reason));
        } else {
          const { output, outputHash: hash } = answer;
          results.set(i, deps.corruptOutputs === true ? corruptOutput(output) : { output, outputHash: hash });
        }
      }),
    );
  }

  const answers: Answer[] = requests.map((request, i) => {
    const refusal = refusals.get(i);
    if (refusal !== undefined) return errorAnswer(request, refusal);
    const r = results.get(i)!;
    return { request, status: ResultStatus.Success, output: r.output, outputHash: r.outputHash };
  });

  const written = await metrics.time("fulfil", () => deps.writer.submit(answers));
  const summary: JobSummary = { txHash: written.txHash, results: [] };
  answers.forEach((a, i) => {
    const status = (Object.keys(ResultStatus) as ResultStatusName[])[a.status]!;
    const outcome = written.outcomes.get(a.request.requestId) ?? "alreadyAnswered";
    metrics.requests.inc({ status, outcome });
    summary.results.push({
      requestId: a.request.requestId.toString(),
      status,
      outcome,
      outputHash: a.outputHash,
    });
    const refusal = refusals.get(i);
    log.info(
      {
        requestId: a.request.requestId.toString(),
        status,
        outcome,
        outputHash: a.outputHash,
        txHash: written.txHash,
        reason: refusal?.reason,
      },
      "request answered",
    );
  });

  // A job whose every request was refused is a failed job: visible, never retried.
  if (refusals.size === requests.length) {
    metrics.jobs.inc({ result: "failed" });
    const first = refusals.get(0)!;
    throw new UnrecoverableError(`${first.status}: ${first.reason}`);
  }
  metrics.jobs.inc({ result: "completed" });
  return summary;
}

const runners = new WeakMap<LoadedModel, ModelRunner>();

/** One runner per loaded model, shared by every job this process works on. */
function runnerFor(model: LoadedModel, deps: ProcessorDeps): ModelRunner {
  let runner = runners.get(model);
  if (runner === undefined) {
    runner = new ModelRunner(model, deps.maxBatch ?? 32, (size) => deps.metrics.batchSize.observe(size));
    runners.set(model, runner);
  }
  return runner;
}

function modelRefusal(err: unknown, lastAttempt: boolean): Refusal {
  if (err instanceof ModelHashMismatchError || err instanceof ModelSchemaError)
    return new Refusal("ModelFailed", err.message);
  if (err instanceof FetchError) {
    if (err.permanent || lastAttempt) return new Refusal("ModelFailed", err.message);
    throw err;
  }
  if (err instanceof GradnetError && err.code === "MODEL_NOT_FOUND")
    return new Refusal("ModelFailed", err.message);
  // onnxruntime could not load the bytes: they are not a model it can run.
  if (err instanceof Error && /onnx|protobuf|model/i.test(err.message) && !(err instanceof GradnetError)) {
    return new Refusal("ModelFailed", `the model cannot be loaded: ${err.message}`);
  }
  throw err;
}

async function inputBytes(item: InferenceJobItem, deps: ProcessorDeps, lastAttempt: boolean): Promise<Hex> {
  if (!item.request.inputIsRef) {
    // The job's copy of the input must be the one the request committed to. A mismatch is the
    // queue's fault, not the requester's: fail the job (it is logged and kept) rather than answer.
    if (inputHash(item.input) !== item.request.inputHash) {
      throw new GradnetError(
        "JOB_INPUT_MISMATCH",
        `request ${item.request.requestId}: the job's input hashes to ${inputHash(item.input)}, not the committed ${item.request.inputHash}`,
      );
    }
    return item.input;
  }
  const uri = item.inputUri ?? "";
  try {
    return await deps.metrics.time("fetch_input", () =>
      fetchCommittedInput(uri, item.request.inputHash, deps.maxInputBytes, deps.fetchInput ?? fetchBytes),
    );
  } catch (err) {
    if (err instanceof InputHashMismatchError) throw new Refusal("InputUnavailable", err.message);
    if (err instanceof FetchError && (err.permanent || lastAttempt))
      throw new Refusal("InputUnavailable", err.message);
    throw err;
  }
}
