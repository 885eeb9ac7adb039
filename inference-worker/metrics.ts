/** The worker's Prometheus metrics, one registry per worker process. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type Stage = "load_model" | "fetch_input" | "validate" | "run" | "fulfil";

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly jobs = new Counter({
    name: "gradnet_worker_jobs_total",
    help: "Jobs processed, by result (completed, failed, retried)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly requests = new Counter({
    name: "gradnet_worker_requests_total",
    help: "Requests answered, by result status and chain outcome",
    labelNames: ["status", "outcome"] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "gradnet_worker_errors_total",
    help: "Errors, by kind",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly stageSeconds = new Histogram({
    name: "gradnet_worker_stage_seconds",
    help: "Time spent per stage of a job",
    labelNames: ["stage"] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "gradnet_worker_batch_size",
    help: "Requests per session.run",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "gradnet_worker_" });
  }

  async time<T>(stage: Stage, fn: () => Promise<T>): Promise<T> {
    const end = this.stageSeconds.startTimer({ stage });
    try {
      return await fn();
    } finally {
      end();
    }
  }
}
