/**
 * The worker's settings as `gradnet worker` flags. The names and defaults are those of the
 * worker's config schema (inference-worker/config.ts); a unit test keeps the two lists equal, so
 * `gradnet --help` need not load the worker to print them.
 */
import type { FlagSpec } from "./args";

export const WORKER_CONFIG_KEYS = [
  "RPC_URL",
  "REDIS_URL",
  "WORKER_PRIVATE_KEY",
  "DEPLOYMENTS_DIR",
  "QUEUE_NAME",
  "CONCURRENCY",
  "MAX_BATCH",
  "MODEL_CACHE_DIR",
  "MAX_INPUT_BYTES",
  "POLL_INTERVAL_MS",
  "METRICS_HOST",
  "METRICS_PORT",
  "LOG_LEVEL",
  "FAULT_CORRUPT_OUTPUTS",
] as const;
export type WorkerConfigKey = (typeof WORKER_CONFIG_KEYS)[number];

/** `MAX_BATCH` → `max-batch`. */
export function workerFlagName(key: string): string {
  return key.toLowerCase().replaceAll("_", "-");
}

const ABOUT: Record<WorkerConfigKey, { description: string; defaultText: string; valueName: string }> = {
  RPC_URL: {
    description: "JSON-RPC endpoint of the chain",
    defaultText: "--rpc, else the devnet's, else http://127.0.0.1:8545",
    valueName: "url",
  },
  REDIS_URL: {
    description: "the relayer's Redis",
    defaultText: "the devnet's, else redis://127.0.0.1:6379",
    valueName: "url",
  },
  WORKER_PRIVATE_KEY: {
    description: "the node's key; the node must be staked for the inference role",
    defaultText: "--key; on the devnet Hardhat account #4",
    valueName: "hex",
  },
  DEPLOYMENTS_DIR: {
    description: "where deployments/<chainId>.json is read",
    defaultText: "the devnet's, else deployments/",
    valueName: "dir",
  },
  QUEUE_NAME: {
    description: "BullMQ queue name",
    defaultText: "the devnet's, else gradnet-inference",
    valueName: "name",
  },
  CONCURRENCY: { description: "jobs processed at once", defaultText: "8", valueName: "n" },
  MAX_BATCH: {
    description: "most requests in one model run and answers in one fulfillBatch",
    defaultText: "32",
    valueName: "n",
  },
  MODEL_CACHE_DIR: {
    description: "verified model bytes, by model id",
    defaultText: ".gradnet/models",
    valueName: "dir",
  },
  MAX_INPUT_BYTES: {
    description: "largest model or stored input fetched",
    defaultText: String(64 * 1024 * 1024),
    valueName: "bytes",
  },
  POLL_INTERVAL_MS: {
    description: "how often to poll the chain for receipts",
    defaultText: "250",
    valueName: "ms",
  },
  METRICS_HOST: {
    description: "where /metrics and /health listen",
    defaultText: "127.0.0.1",
    valueName: "host",
  },
  METRICS_PORT: {
    description: "port of /metrics and /health; 0 turns them off",
    defaultText: "9464",
    valueName: "port",
  },
  FAULT_CORRUPT_OUTPUTS: {
    description:
      "testing aid: answer every request deliberately wrong (true or false), so verifiers catch it",
    defaultText: "false",
    valueName: "bool",
  },
  LOG_LEVEL: {
    description: "pino log level (fatal, error, warn, info, debug, trace, silent)",
    defaultText: "info",
    valueName: "level",
  },
};

/** One string flag per worker setting, documented; no `default` so that a file or env can set it. */
export function workerFlagSpecs(): Record<string, FlagSpec> {
  return Object.fromEntries(
    WORKER_CONFIG_KEYS.map((key) => {
      const a = ABOUT[key];
      return [
        workerFlagName(key),
        {
          type: "string",
          valueName: a.valueName,
          description: `${a.description} [${key}]`,
          defaultText: a.defaultText,
        },
      ];
    }),
  );
}

/** The built-in default each setting's help states (for the test against the worker's schema). */
export function workerDefaultText(key: WorkerConfigKey): string {
  return ABOUT[key].defaultText;
}
