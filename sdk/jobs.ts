/**
 * The queue contract between the relayer (producer) and the inference workers (consumers).
 * One BullMQ job carries the requests of one model from one block, at most `maxBatch` of them,
 * so a worker can run them in one `session.run` and fulfil them in one transaction.
 *
 * Grouping is a pure function of confirmed logs, so a relayer that replays blocks after a
 * restart makes the same jobs with the same ids, and BullMQ drops the duplicates:
 * jobId = `<chainId>-<requestId of the job's first request>`; each request is in exactly one job.
 * A redundant request (answered by `redundancy` distinct nodes) gets one job per answer instead,
 * `<chainId>-<requestId>-r<replica>`, each with that request alone; a worker that already answered
 * a request hands its other replicas back to the queue for another worker.
 * (BullMQ reserves ":" in custom job ids, hence the dash.)
 */
import type { Address, Hex } from "viem";
import type { Request } from "./protocol";

export const INFERENCE_QUEUE = "gradnet-inference";
export const DEFAULT_MAX_BATCH = 32;

/** A Request with its bigints as decimal strings: what travels through Redis as JSON. */
export interface RequestJson {
  requestId: string;
  modelId: Hex;
  requester: Address;
  callbackGasLimit: number;
  deadline: string;
  fee: string;
  inputHash: Hex;
  inputIsRef: boolean;
  redundancy: number;
}

export interface InferenceJobItem {
  request: RequestJson;
  /** The inline input bytes; "0x" when the input is stored off chain. */
  input: Hex;
  /** Where to fetch the input when `request.inputIsRef`. */
  inputUri?: string;
  blockNumber: string;
  txHash: Hex;
  logIndex: number;
}

export interface InferenceJob {
  chainId: number;
  hub: Address;
  modelId: Hex;
  items: InferenceJobItem[];
}

export interface JobSpec {
  name: "infer";
  data: InferenceJob;
  opts: { jobId: string };
}

/** The decoded `InferenceRequested` log the relayer hands to `eventToJobItem`. */
export interface RequestedLog {
  request: Request;
  input: Hex;
  blockNumber: bigint;
  txHash: Hex;
  logIndex: number;
}

export function requestToJson(r: Request): RequestJson {
  return {
    requestId: r.requestId.toString(),
    modelId: r.modelId,
    requester: r.requester,
    callbackGasLimit: Number(r.callbackGasLimit),
    deadline: r.deadline.toString(),
    fee: r.fee.toString(),
    inputHash: r.inputHash,
    inputIsRef: r.inputIsRef,
    redundancy: Number(r.redundancy),
  };
}

export function requestFromJson(r: RequestJson): Request {
  return {
    requestId: BigInt(r.requestId),
    modelId: r.modelId,
    requester: r.requester,
    callbackGasLimit: r.callbackGasLimit,
    deadline: BigInt(r.deadline),
    fee: BigInt(r.fee),
    inputHash: r.inputHash,
    inputIsRef: r.inputIsRef,
    redundancy: r.redundancy,
  };
}

export function jobId(chainId: number, requestId: bigint | string): string {
  return `${chainId}-${requestId.toString()}`;
}

/** The job of one of a redundant request's `redundancy` answers (replica 0, 1, ...). */
export function replicaJobId(chainId: number, requestId: bigint | string, replica: number): string {
  return `${jobId(chainId, requestId)}-r${replica}`;
}

/** One request event → one job item. For a by-reference input the event's bytes are its URI. */
export function eventToJobItem(log: RequestedLog): InferenceJobItem {
  const item: InferenceJobItem = {
    request: requestToJson(log.request),
    input: log.request.inputIsRef ? "0x" : log.input,
    blockNumber: log.blockNumber.toString(),
    txHash: log.txHash,
    logIndex: log.logIndex,
  };
  if (log.request.inputIsRef) item.inputUri = Buffer.from(log.input.slice(2), "hex").toString("utf8");
  return item;
}

/**
 * Confirmed request logs → jobs: grouped by (block, model) in log order, split into chunks of
 * at most `maxBatch`. Pure and deterministic.
 */
export function logsToJobs(
  chainId: number,
  hub: Address,
  logs: readonly RequestedLog[],
  maxBatch = DEFAULT_MAX_BATCH,
): JobSpec[] {
  if (!Number.isInteger(maxBatch) || maxBatch < 1)
    throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  const sorted = [...logs].sort((a, b) =>
    a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
  );
  const groups = new Map<string, RequestedLog[]>();
  const jobs: JobSpec[] = [];
  for (const log of sorted) {
    const { request } = log;
    if (request.redundancy > 1) {
      const data = { chainId, hub, modelId: request.modelId, items: [eventToJobItem(log)] };
      for (let replica = 0; replica < request.redundancy; replica++) {
        jobs.push({
          name: "infer",
          data,
          opts: { jobId: replicaJobId(chainId, request.requestId, replica) },
        });
      }
      continue;
    }
    const key = `${log.blockNumber}:${log.request.modelId}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = []));
    g.push(log);
  }
  for (const group of groups.values()) {
    for (let i = 0; i < group.length; i += maxBatch) {
      const chunk = group.slice(i, i + maxBatch);
      const first = chunk[0]!;
      jobs.push({
        name: "infer",
        data: { chainId, hub, modelId: first.request.modelId, items: chunk.map(eventToJobItem) },
        opts: { jobId: jobId(chainId, first.request.requestId) },
      });
    }
  }
  return jobs;
}
