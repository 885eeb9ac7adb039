/** The relayer's Prometheus metrics, on a registry of its own (one per relayer instance). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface RelayerMetrics {
  registry: Registry;
  blocksProcessed: Counter;
  requestsQueued: Counter;
  jobsQueued: Counter;
  rpcErrors: Counter;
  queueErrors: Counter;
  checkpointBlock: Gauge;
  headBlock: Gauge;
  lagBlocks: Gauge;
  httpDuration: Histogram<"method" | "route" | "status_code">;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): RelayerMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    blocksProcessed: new Counter({
      name: "gradnet_relayer_blocks_processed_total",
      help: "Confirmed blocks scanned for InferenceRequested logs",
      registers,
    }),
    requestsQueued: new Counter({
      name: "gradnet_relayer_requests_queued_total",
      help: "Requests handed to the queue (replays after a restart count again; the queue drops them)",
      registers,
    }),
    jobsQueued: new Counter({
      name: "gradnet_relayer_jobs_queued_total",
      help: "Jobs handed to the queue (one job = the requests of one model in one block, up to MAX_BATCH)",
      registers,
    }),
    rpcErrors: new Counter({
      name: "gradnet_relayer_rpc_errors_total",
      help: "Failed JSON-RPC calls of the chain watcher (each is retried with backoff)",
      registers,
    }),
    queueErrors: new Counter({
      name: "gradnet_relayer_queue_errors_total",
      help: "Failed Redis calls of the chain watcher: adding jobs, reading or writing the checkpoint",
      registers,
    }),
    checkpointBlock: new Gauge({
      name: "gradnet_relayer_checkpoint_block",
      help: "Last block whose requests are all in the queue",
      registers,
    }),
    headBlock: new Gauge({
      name: "gradnet_relayer_head_block",
      help: "Latest block number the RPC reported",
      registers,
    }),
    lagBlocks: new Gauge({
      name: "gradnet_relayer_lag_blocks",
      help: "Chain head minus checkpoint",
      registers,
    }),
    httpDuration: new Histogram({
      name: "gradnet_relayer_http_request_duration_seconds",
      help: "HTTP API request duration",
      labelNames: ["method", "route", "status_code"] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}
