/**
 * The worker's configuration: environment variables, overridden by command-line flags of the
 * same name in kebab case (`CONCURRENCY=4` or `--concurrency 4`). Parsed once, at start.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { DEFAULT_DEPLOYMENTS_DIR, GradnetError, INFERENCE_QUEUE } from "../sdk";

const hex32 = /^0x[0-9a-fA-F]{64}$/;

export const workerConfigSchema = z.object({
  RPC_URL: z.string().url().default("http://127.0.0.1:8545"),
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  WORKER_PRIVATE_KEY: z.string().regex(hex32, "must be a 0x-prefixed 32-byte hex private key"),
  DEPLOYMENTS_DIR: z.string().default(DEFAULT_DEPLOYMENTS_DIR),
  QUEUE_NAME: z.string().min(1).default(INFERENCE_QUEUE),
  CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  MAX_BATCH: z.coerce.number().int().min(1).max(1024).default(32),
  MODEL_CACHE_DIR: z.string().default(path.join(".gradnet", "models")),
  MAX_INPUT_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(64 * 1024 * 1024),
  POLL_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(250),
  METRICS_HOST: z.string().default("127.0.0.1"),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Testing aid: answer every request deliberately wrong (see inference-worker/fault.ts). */
  FAULT_CORRUPT_OUTPUTS: z
    .preprocess(
      (v) => (typeof v === "string" ? v.trim().toLowerCase() : v),
      z.enum(["true", "false", "1", "0"], { message: "must be true, false, 1 or 0" }).default("false"),
    )
    .transform((v) => v === "true" || v === "1"),
});

export type WorkerConfig = z.infer<typeof workerConfigSchema>;

export class ConfigError extends GradnetError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super("CONFIG", `invalid worker configuration: ${field}: ${reason}`);
  }
}

const FLAGS = Object.keys(workerConfigSchema.shape).map((k) => k.toLowerCase().replaceAll("_", "-"));

/** Pure: env and argv in, a validated config (or a ConfigError naming the field) out. */
export function parseWorkerConfig(
  env: Record<string, string | undefined>,
  argv: string[] = [],
): WorkerConfig {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: argv,
      options: Object.fromEntries(FLAGS.map((f) => [f, { type: "string" as const }])),
      strict: true,
    }).values;
  } catch (err) {
    throw new ConfigError("flags", (err as Error).message);
  }
  const merged: Record<string, unknown> = {};
  for (const key of Object.keys(workerConfigSchema.shape)) {
    const flag = flags[key.toLowerCase().replaceAll("_", "-")];
    const value = typeof flag === "string" ? flag : env[key];
    if (value !== undefined && value !== "") merged[key] = value;
  }
  const parsed = workerConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(issue.path.join(".") || "config", issue.message);
  }
  return parsed.data;
}
