/**
 * The chain watcher: confirmed InferenceRequested logs → BullMQ jobs, resumable from a checkpoint.
 *
 * Each iteration reads the head, and for every chunk of confirmed blocks after the checkpoint it
 * fetches the hub's request logs, groups them into jobs (sdk `logsToJobs`), adds the jobs to the
 * queue and only then moves the checkpoint. A crash between the two replays the chunk: the jobs
 * have deterministic ids, so the queue drops the duplicates (at-least-once in, exactly-once queued).
 */
import type { Address } from "viem";
import { logsToJobs, type InferenceJob, type JobSpec } from "../sdk";
import type { HubReader } from "./chain";
import type { RelayerMetrics } from "./metrics";
import { BackgroundLoop } from "./loop";

// ------------------------------------------------------------------------------- pure core

export interface BlockRange {
  fromBlock: bigint;
  toBlock: bigint;
}

/**
 * The next chunk of confirmed blocks to process, or undefined when there is none yet.
 * Starts after the checkpoint (never before `startBlock`) and ends at the safe head
 * (`head - confirmations`) or after `chunk` blocks, whichever comes first.
 */
export function nextRange(
  checkpoint: bigint | undefined,
  head: bigint,
  confirmations: number,
  chunk: number,
  startBlock: bigint,
): BlockRange | undefined {
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunk must be a positive integer`);
  if (!Number.isInteger(confirmations) || confirmations < 0)
    throw new RangeError(`confirmations must be a non-negative integer`);
  const safe = head - BigInt(confirmations);
  let fromBlock = checkpoint === undefined ? startBlock : checkpoint + 1n;
  if (fromBlock < startBlock) fromBlock = startBlock;
  if (fromBlock > safe) return undefined;
  const end = fromBlock + BigInt(chunk) - 1n;
  return { fromBlock, toBlock: end < safe ? end : safe };
}

/** Exponential backoff: `base * 2^(failures-1)`, capped. */
export function backoffDelay(failures: number, baseMs: number, capMs = 10_000): number {
  if (failures < 1) return 0;
  return Math.min(capMs, baseMs * 2 ** Math.min(failures - 1, 30));
}

/** Where the checkpoint of one relayer (chain, hub, queue) lives in Redis. */
export function checkpointKey(chainId: number, hub: Address, queueName: string): string {
  return `gradnet:relayer:${chainId}:${hub.toLowerCase()}:${queueName}:checkpoint`;
}

export const JOB_OPTIONS = {
  attempts: 5,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: false,
} as const;

export interface QueuedJob {
  name: JobSpec["name"];
  data: InferenceJob;
  opts: typeof JOB_OPTIONS & { jobId: string };
}

/** sdk job specs → what the watcher hands to `queue.addBulk`: the sdk's job id, our retry policy. */
export function toQueuedJobs(specs: readonly JobSpec[]): QueuedJob[] {
  return specs.map((s) => ({
    name: s.name,
    data: s.data,
    opts: { ...JOB_OPTIONS, jobId: s.opts.jobId },
  }));
}

// -------------------------------------------------------------------------------- adapters

/** Where jobs go: a BullMQ Queue satisfies this. */
export interface JobSink {
  addBulk(jobs: QueuedJob[]): Promise<unknown>;
}

export interface CheckpointStore {
  get(): Promise<bigint | undefined>;
  set(block: bigint): Promise<void>;
}

/** The checkpoint as a decimal string under one Redis key. */
export function redisCheckpointStore(
  redis: { get(key: string): Promise<string | null>; set(key: string, value: string): Promise<unknown> },
  key: string,
): CheckpointStore {
  return {
    async get() {
      const v = await redis.get(key);
      if (v === null) return undefined;
      if (!/^\d+$/.test(v))
        throw new Error(`checkpoint ${key} holds ${JSON.stringify(v)}, not a block number`);
      return BigInt(v);
    },
    async set(block) {
      await redis.set(key, block.toString());
    },
  };
}

export interface WatcherLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface WatcherOptions {
  chainId: number;
  reader: HubReader;
  sink: JobSink;
  checkpoints: CheckpointStore;
  confirmations: number;
  startBlock: bigint;
  logChunkBlocks: number;
  maxBatch: number;
  pollIntervalMs: number;
  /** Cap of the retry backoff; default 10 s. */
  maxBackoffMs?: number;
  logger: WatcherLogger;
  metrics?: RelayerMetrics;
}

export interface WatcherStats {
  running: boolean;
  head: bigint | undefined;
  checkpoint: bigint | undefined;
  lagBlocks: bigint | undefined;
  blocksProcessed: number;
  requestsQueued: number;
  jobsQueued: number;
  rpcErrors: number;
  queueErrors: number;
  /** Iterations failed in a row; 0 when the last one succeeded. */
  consecutiveFailures: number;
  lastError: string | undefined;
  /** The stored checkpoint is past the chain head (a reset devnet, or a lagging RPC). */
  checkpointAhead: boolean;
}

class StageError extends Error {
  constructor(
    readonly stage: "rpc" | "queue",
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

async function stage<T>(kind: "rpc" | "queue", fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new StageError(kind, err);
  }
}

export class ChainWatcher extends BackgroundLoop {
  readonly stats: WatcherStats = {
    running: false,
    head: undefined,
    checkpoint: undefined,
    lagBlocks: undefined,
    blocksProcessed: 0,
    requestsQueued: 0,
    jobsQueued: 0,
    rpcErrors: 0,
    queueErrors: 0,
    consecutiveFailures: 0,
    lastError: undefined,
    checkpointAhead: false,
  };

  private checkpointLoaded = false;

  constructor(private readonly opts: WatcherOptions) {
    super();
    if (!Number.isInteger(opts.logChunkBlocks) || opts.logChunkBlocks < 1)
      throw new RangeError("logChunkBlocks must be a positive integer");
  }

  /** Start the loop in the background; resolves at once. */
  override start(): void {
    this.stats.running = true;
    super.start();
  }

  /**
   * One iteration: process every confirmed block after the checkpoint, chunk by chunk.
   * Returns the number of blocks processed. Throws on an RPC or Redis failure (the loop retries).
   */
  async poll(): Promise<number> {
    const { opts, stats } = this;
    if (!this.checkpointLoaded) {
      stats.checkpoint = await stage("queue", () => opts.checkpoints.get());
      this.checkpointLoaded = true;
      opts.metrics?.checkpointBlock.set(Number(stats.checkpoint ?? -1n));
      opts.logger.info(
        { checkpoint: stats.checkpoint?.toString() ?? null, startBlock: opts.startBlock.toString() },
        stats.checkpoint === undefined
          ? "no checkpoint: starting at START_BLOCK"
          : "resuming from checkpoint",
      );
    }
    const head = await stage("rpc", () => opts.reader.getBlockNumber());
    this.observeHead(head);

    let processed = 0;
    for (;;) {
      const range = nextRange(
        stats.checkpoint,
        head,
        opts.confirmations,
        opts.logChunkBlocks,
        opts.startBlock,
      );
      if (range === undefined) break;
      await this.processRange(range);
      processed += Number(range.toBlock - range.fromBlock + 1n);
      this.observeHead(head);
      if (this.stopping) break;
    }
    return processed;
  }

  private observeHead(head: bigint): void {
    const { stats, opts } = this;
    stats.head = head;
    const done = stats.checkpoint ?? opts.startBlock - 1n;
    stats.lagBlocks = head > done ? head - done : 0n;
    const ahead = stats.checkpoint !== undefined && stats.checkpoint > head;
    if (ahead && !stats.checkpointAhead) {
      opts.logger.warn(
        { checkpoint: stats.checkpoint?.toString(), head: head.toString() },
        "checkpoint is past the chain head: waiting for the chain to catch up " +
          "(if the chain was reset, delete the checkpoint key and restart)",
      );
    }
    stats.checkpointAhead = ahead;
    opts.metrics?.headBlock.set(Number(head));
    opts.metrics?.lagBlocks.set(Number(stats.lagBlocks));
  }

  private async processRange(range: BlockRange): Promise<void> {
    const { opts, stats } = this;
    const logs = await stage("rpc", () => opts.reader.getRequestedLogs(range.fromBlock, range.toBlock));
    const jobs = toQueuedJobs(logsToJobs(opts.chainId, opts.reader.hub, logs, opts.maxBatch));
    if (jobs.length > 0) await stage("queue", () => opts.sink.addBulk(jobs));
    await stage("queue", () => opts.checkpoints.set(range.toBlock));

    const blocks = Number(range.toBlock - range.fromBlock + 1n);
    stats.checkpoint = range.toBlock;
    stats.blocksProcessed += blocks;
    stats.requestsQueued += logs.length;
    stats.jobsQueued += jobs.length;
    opts.metrics?.blocksProcessed.inc(blocks);
    opts.metrics?.requestsQueued.inc(logs.length);
    opts.metrics?.jobsQueued.inc(jobs.length);
    opts.metrics?.checkpointBlock.set(Number(range.toBlock));
    const log = jobs.length > 0 ? opts.logger.info.bind(opts.logger) : opts.logger.debug.bind(opts.logger);
    log(
      {
        fromBlock: range.fromBlock.toString(),
        toBlock: range.toBlock.toString(),
        requests: logs.length,
        jobs: jobs.map((j) => j.opts.jobId),
      },
      jobs.length > 0 ? "queued requests" : "no requests in range",
    );
  }

  protected async run(): Promise<void> {
    try {
      await this.loopPolling();
    } finally {
      this.stats.running = false;
    }
  }

  private async loopPolling(): Promise<void> {
    const { opts, stats } = this;
    while (!this.stopping) {
      let delay = opts.pollIntervalMs;
      try {
        await this.poll();
        if (stats.consecutiveFailures > 0) opts.logger.info({}, "chain watcher recovered");
        stats.consecutiveFailures = 0;
        stats.lastError = undefined;
      } catch (err) {
        stats.consecutiveFailures += 1;
        const kind = err instanceof StageError ? err.stage : "rpc";
        if (kind === "rpc") {
          stats.rpcErrors += 1;
          opts.metrics?.rpcErrors.inc();
        } else {
          stats.queueErrors += 1;
          opts.metrics?.queueErrors.inc();
        }
        stats.lastError = err instanceof Error ? err.message : String(err);
        delay = backoffDelay(
          stats.consecutiveFailures,
          Math.max(opts.pollIntervalMs, 250),
          opts.maxBackoffMs,
        );
        opts.logger.error(
          { err: err instanceof StageError ? err.cause : err, stage: kind, retryInMs: delay },
          `chain watcher ${kind === "rpc" ? "RPC" : "Redis"} error; retrying`,
        );
      }
      if (!this.stopping) await this.sleep(delay);
    }
  }
}
