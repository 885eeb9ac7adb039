/**
 * The inference worker: `tsx inference-worker/main.ts [--flags]` or `npm run worker`.
 * Takes jobs from the BullMQ queue, runs the models, posts the answers on chain, and serves
 * /metrics and /health for Prometheus.
 */
import http from "node:http";
import { DelayedError, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import pino, { type Logger } from "pino";
import {
  createPublicClient,
  createWalletClient,
  http as httpTransport,
  nonceManager,
  type Chain,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { inferenceHubAbi, resolveAddresses, type InferenceJob } from "../sdk";
import { parseWorkerConfig, type WorkerConfig } from "./config";
import { WorkerMetrics } from "./metrics";
import { ModelCache } from "./modelCache";
import { processJob, type JobSummary } from "./processor";
import { ReplicaGuard } from "./replicas";
import { ChainWriter } from "./writer";

/** How long a redundant request's answer job waits before another worker may take it. */
const REPLICA_HAND_BACK_MS = 500;

export interface RunningWorker {
  address: `0x${string}`;
  metricsUrl?: string;
  worker: Worker<InferenceJob, JobSummary>;
  stop(): Promise<void>;
}

export async function startWorker(
  config: WorkerConfig,
  logger: Logger = pino({ level: config.LOG_LEVEL }),
): Promise<RunningWorker> {
  const transport = httpTransport(config.RPC_URL, { retryCount: 5, retryDelay: 250 });
  const probe = createPublicClient({ transport });
  const chainId = await probe.getChainId();
  const chain: Chain =
    chainId === hardhat.id ? hardhat : { ...hardhat, id: chainId, name: `chain-${chainId}` };
  const publicClient = createPublicClient({ chain, transport, pollingInterval: config.POLL_INTERVAL_MS });
  const account = privateKeyToAccount(config.WORKER_PRIVATE_KEY as `0x${string}`, { nonceManager });
  const walletClient = createWalletClient({ chain, transport, account });
  const addresses = resolveAddresses(chainId, config.DEPLOYMENTS_DIR);
  const log = logger.child({ worker: account.address });

  const metrics = new WorkerMetrics();
  const models = new ModelCache({
    client: publicClient,
    modelRegistry: addresses.modelRegistry,
    cacheDir: config.MODEL_CACHE_DIR,
    maxModelBytes: config.MAX_INPUT_BYTES,
    logger: log,
  });
  const writer = new ChainWriter(publicClient, walletClient, addresses.inferenceHub, config.MAX_BATCH);
  const connection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const hub = { address: addresses.inferenceHub, abi: inferenceHubAbi } as const;
  const replicas = new ReplicaGuard({
    answerOf: (id) =>
      publicClient.readContract({ ...hub, functionName: "answerOf", args: [id, account.address] }),
    requestState: (id) => publicClient.readContract({ ...hub, functionName: "requestState", args: [id] }),
    answers: async (id) =>
      (await publicClient.readContract({ ...hub, functionName: "agreementOf", args: [id] })).answers,
  });
  const runJob = (job: Job<InferenceJob, JobSummary>) =>
    processJob(job, {
      models,
      writer,
      metrics,
      logger: log,
      maxInputBytes: config.MAX_INPUT_BYTES,
      maxBatch: config.MAX_BATCH,
      corruptOutputs: config.FAULT_CORRUPT_OUTPUTS,
    });

  const worker = new Worker<InferenceJob, JobSummary>(
    config.QUEUE_NAME,
    async (job: Job<InferenceJob, JobSummary>, token?: string) => {
      const only = job.data.items.length === 1 ? job.data.items[0] : undefined;
      if (only === undefined || only.request.redundancy <= 1) return runJob(job);
      // One answer of a redundant request: at most one per worker.
      const requestId = BigInt(only.request.requestId);
      const decision = await replicas.claim(requestId, only.request.redundancy);
      if (decision === "done") return { results: [] };
      if (decision === "handBack") {
        await job.moveToDelayed(Date.now() + REPLICA_HAND_BACK_MS, token);
        throw new DelayedError();
      }
      try {
        return await runJob(job);
      } catch (err) {
        replicas.release(requestId);
        throw err;
      }
    },
    { connection, concurrency: config.CONCURRENCY, autorun: true },
  );
  worker.on("failed", (job, err) => {
    const retrying =
      job !== undefined && job.attemptsMade < (job.opts.attempts ?? 1) && err.name !== "UnrecoverableError";
    if (retrying) metrics.jobs.inc({ result: "retried" });
    log.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, retrying, err: err.message }, "job failed");
  });
  worker.on("error", (err) => log.error({ err: err.message }, "worker error"));

  let server: http.Server | undefined;
  let metricsUrl: string | undefined;
  if (config.METRICS_PORT !== 0) {
    server = http.createServer((req, res) => {
      if (req.url === "/metrics") {
        metrics.registry.metrics().then(
          (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      } else if (req.url === "/health") {
        const ok = worker.isRunning();
        res
          .writeHead(ok ? 200 : 503, { "content-type": "application/json" })
          .end(JSON.stringify({ status: ok ? "ok" : "stopped", address: account.address }));
      } else {
        res
          .writeHead(404, { "content-type": "application/json" })
          .end(JSON.stringify({ error: "not_found" }));
      }
    });
    await new Promise<void>((resolve, reject) => {
      server!.once("error", reject);
      server!.listen(config.METRICS_PORT, config.METRICS_HOST, resolve);
    });
    const addr = server.address();
    metricsUrl =
      typeof addr === "object" && addr !== null ? `http://${config.METRICS_HOST}:${addr.port}` : undefined;
  }
  if (config.FAULT_CORRUPT_OUTPUTS) {
    log.warn(
      {},
      "FAULT_CORRUPT_OUTPUTS is on: this worker posts deliberately wrong answers (a testing aid); " +
        "verifiers will challenge them and its stake will be slashed",
    );
  }
  log.info(
    {
      queue: config.QUEUE_NAME,
      concurrency: config.CONCURRENCY,
      hub: addresses.inferenceHub,
      metricsUrl,
      faultCorruptOutputs: config.FAULT_CORRUPT_OUTPUTS,
    },
    "worker started",
  );

  return {
    address: account.address,
    metricsUrl,
    worker,
    async stop() {
      await worker.close();
      await connection.quit().catch(() => undefined);
      if (server !== undefined) await new Promise<void>((r) => server!.close(() => r()));
    },
  };
}

if (require.main === module) {
  let config: WorkerConfig;
  try {
    config = parseWorkerConfig(process.env, process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const logger = pino({ level: config.LOG_LEVEL });
  startWorker(config, logger).then(
    (running) => {
      const shutdown = () => {
        logger.info("stopping worker");
        running.stop().then(() => process.exit(0));
      };
      process.once("SIGINT", shutdown);
      process.once("SIGTERM", shutdown);
    },
    (err: unknown) => {
      logger.fatal({ err: (err as Error).message }, "worker failed to start");
      process.exit(1);
    },
  );
}
