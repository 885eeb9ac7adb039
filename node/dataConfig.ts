/**
 * The data node's configuration: one zod schema over the environment, parsed once at start, and
 * the feed list from DATA_FEEDS (JSON in the variable) or DATA_FEEDS_FILE (a JSON file). Nothing
 * else in the data node reads `process.env`. See docs/operator.md, "Running a data node".
 */
import fs from "node:fs";
import path from "node:path";
import type { Hex } from "viem";
import { z } from "zod";
import { DEFAULT_DEPLOYMENTS_DIR } from "../sdk";
import { ConfigError, LOG_LEVELS, envFields, type LogLevel } from "./config";
import { feedSourcesSchema, type FeedSource } from "./feedSource";

const { optional, withDefault, integer, url } = envFields;

export const dataNodeEnvSchema = z.object({
  RPC_URL: withDefault(url(["http:", "https:"]), "http://127.0.0.1:8545"),
  DEPLOYMENTS_DIR: optional(z.string()),
  DATA_PRIVATE_KEY: optional(
    z
      .string()
      .trim()
      .regex(/^0x[0-9a-fA-F]{64}$/, "must be a private key: 0x followed by 64 hex digits"),
  ),
  DATA_FEEDS: optional(z.string()),
  DATA_FEEDS_FILE: optional(z.string()),
  DATA_FETCH_TIMEOUT_MS: withDefault(integer(1, 600_000), "5000"),
  DATA_MAX_BACKOFF_MS: withDefault(integer(100, 3_600_000), "60000"),
  DATA_METRICS_HOST: withDefault(z.string().trim().min(1), "127.0.0.1"),
  DATA_METRICS_PORT: optional(integer(0, 65_535)),
  LOG_LEVEL: withDefault(z.enum(LOG_LEVELS), "info"),
});

const SECRET_FIELDS: ReadonlySet<string> = new Set(["DATA_PRIVATE_KEY"]);

export interface DataNodeConfig {
  rpcUrl: string;
  deploymentsDir: string;
  /** The key the node reports with: a listed reporter of its feeds, staked with the DATA role. */
  privateKey: Hex;
  feeds: FeedSource[];
  /** Default fetch timeout of a feed that sets none. */
  fetchTimeoutMs: number;
  /** Cap of the retry backoff after failed fetches or transactions. */
  maxBackoffMs: number;
  metricsHost: string;
  /** Serve /metrics and /health on this port (0: any free port); unset: no server. */
  metricsPort: number | undefined;
  logLevel: LogLevel;
}

/**
 * Parse the environment into a data node config. `env`, `cwd` and `readFile` (for
 * DATA_FEEDS_FILE) are all it reads. Throws ConfigError naming the field, for a feed down to its
 * entry: `DATA_FEEDS[1].url`.
 */
export function parseDataNodeConfig(
  env: Readonly<Record<string, string | undefined>>,
  cwd: string = process.cwd(),
  readFile: (file: string) => string = (file) => fs.readFileSync(file, "utf8"),
): DataNodeConfig {
  const parsed = dataNodeEnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join(".") || "environment";
    const value = env[field];
    const shown = value === undefined || SECRET_FIELDS.has(field) ? "" : ` (got ${JSON.stringify(value)})`;
    throw new ConfigError(field, `${issue.message}${shown}`);
  }
  const e = parsed.data;
  if (e.DATA_PRIVATE_KEY === undefined) {
    throw new ConfigError("DATA_PRIVATE_KEY", "is required: the key of a reporter staked with the DATA role");
  }
  if (e.DATA_FEEDS !== undefined && e.DATA_FEEDS_FILE !== undefined) {
    throw new ConfigError("DATA_FEEDS", "and DATA_FEEDS_FILE are both set; set one");
  }
  let field: string;
  let text: string;
  if (e.DATA_FEEDS !== undefined) {
    field = "DATA_FEEDS";
    text = e.DATA_FEEDS;
  } else if (e.DATA_FEEDS_FILE !== undefined) {
    field = "DATA_FEEDS_FILE";
    const file = path.resolve(cwd, e.DATA_FEEDS_FILE);
    try {
      text = readFile(file);
    } catch (err) {
      throw new ConfigError(field, `cannot be read: ${(err as Error).message}`);
    }
  } else {
    throw new ConfigError(
      "DATA_FEEDS",
      'is required (or DATA_FEEDS_FILE): the feeds to report, e.g. [{"symbol":"ETH/USD","url":"https://...","jsonPath":"data.price"}]',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(field, `is not JSON: ${(err as Error).message}`);
  }
  // A file may wrap the list: { "feeds": [...] }.
  const list =
    json !== null && typeof json === "object" && !Array.isArray(json) && "feeds" in json
      ? (json as { feeds: unknown }).feeds
      : json;
  const feeds = feedSourcesSchema.safeParse(list);
  if (!feeds.success) {
    const issue = feeds.error.issues[0]!;
    const at = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("");
    throw new ConfigError(`${field}${at}`, issue.message);
  }
  return {
    rpcUrl: e.RPC_URL,
    deploymentsDir: path.resolve(cwd, e.DEPLOYMENTS_DIR ?? DEFAULT_DEPLOYMENTS_DIR),
    privateKey: e.DATA_PRIVATE_KEY as Hex,
    feeds: feeds.data,
    fetchTimeoutMs: e.DATA_FETCH_TIMEOUT_MS,
    maxBackoffMs: e.DATA_MAX_BACKOFF_MS,
    metricsHost: e.DATA_METRICS_HOST,
    metricsPort: e.DATA_METRICS_PORT,
    logLevel: e.LOG_LEVEL,
  };
}
