/**
 * The relayer's configuration: one zod schema over the environment, parsed once at start.
 * Nothing else in node/ reads `process.env`.
 *
 * Two defaults depend on the chain and are settled after the chain id is known, by the pure
 * `resolveChainSettings`: CONFIRMATIONS (0 on the devnet, else 2) and START_BLOCK (the
 * deployment file's `deployedAtBlock`, else 0).
 */
import path from "node:path";
import type { Hex } from "viem";
import { z } from "zod";
import { DEFAULT_DEPLOYMENTS_DIR, DEVNET_CHAIN_ID, GradnetError, INFERENCE_QUEUE } from "../sdk";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_MAX_MODEL_BYTES = 64 * 1024 * 1024;

const blankToUndefined = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);

/** An unset or blank variable counts as absent, so `FOO=` means the same as no FOO at all. */
const optional = <T extends z.ZodTypeAny>(schema: T) => z.preprocess(blankToUndefined, schema.optional());

/** As `optional`, with a default given as the variable's text (parsed like a set value). */
const withDefault = <T extends z.ZodTypeAny>(schema: T, text: string) =>
  z.preprocess((v) => blankToUndefined(v) ?? text, schema);

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, "must be a non-negative integer")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

/** `0x…,0x…`: distinct private keys, spaces around commas allowed. */
const privateKeyList = z
  .string()
  .transform((s) => s.split(",").map((k) => k.trim()))
  .refine((keys) => keys.every((k) => PRIVATE_KEY.test(k)), {
    message: "must be private keys (0x followed by 64 hex digits) separated by commas",
  })
  .refine((keys) => new Set(keys.map((k) => k.toLowerCase())).size === keys.length, {
    message: "lists the same key twice",
  });

/** A fraction from 0 to 1 inclusive, written as a decimal number. */
const share = z
  .string()
  .trim()
  .regex(/^(\d+(\.\d*)?|\.\d+)$/, "must be a number from 0 to 1")
  .transform(Number)
  .pipe(z.number().min(0, "must be a number from 0 to 1").max(1, "must be a number from 0 to 1"));

const blockNumber = z
  .string()
  .trim()
  .regex(/^\d+$/, "must be a block number (a non-negative integer)")
  .transform((s) => BigInt(s));

const url = (protocols: readonly string[]) =>
  z
    .string()
    .trim()
    .url("must be a URL")
    .refine((s) => URL.canParse(s) && protocols.includes(new URL(s).protocol), {
      message: `must be a ${protocols.map((p) => p.replace(":", "://")).join(" or ")} URL`,
    });

/** The field parsers above, for the other processes' schemas in node/ (node/dataConfig.ts). */
export const envFields = { optional, withDefault, integer, url } as const;

export const envSchema = z.object({
  RPC_URL: withDefault(url(["http:", "https:"]), "http://127.0.0.1:8545"),
  REDIS_URL: withDefault(url(["redis:", "rediss:"]), "redis://127.0.0.1:6379"),
  DEPLOYMENTS_DIR: optional(z.string()),
  CONFIRMATIONS: optional(integer(0, 10_000)),
  POLL_INTERVAL_MS: withDefault(integer(10, 3_600_000), "500"),
  LOG_CHUNK_BLOCKS: withDefault(integer(1, 1_000_000), "2000"),
  START_BLOCK: optional(blockNumber),
  MAX_BATCH: withDefault(integer(1, 10_000), "32"),
  QUEUE_NAME: withDefault(
    z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9._-]{1,100}$/, "must be 1-100 characters of letters, digits, '.', '_' or '-'"),
    INFERENCE_QUEUE,
  ),
  HTTP_HOST: withDefault(z.string().trim().min(1), "127.0.0.1"),
  HTTP_PORT: withDefault(integer(0, 65_535), "8080"),
  PUBLIC_URL: optional(url(["http:", "https:"])),
  STORE_DIR: optional(z.string()),
  MAX_MODEL_BYTES: withDefault(integer(1, 2 ** 31 - 1), String(DEFAULT_MAX_MODEL_BYTES)),
  LOG_LEVEL: withDefault(z.enum(LOG_LEVELS), "info"),
  KEEPER_PRIVATE_KEY: optional(
    z
      .string()
      .trim()
      .regex(/^0x[0-9a-fA-F]{64}$/, "must be a private key: 0x followed by 64 hex digits"),
  ),
  KEEPER_INTERVAL_MS: withDefault(integer(10, 3_600_000), "1000"),
  VERIFIER_PRIVATE_KEYS: optional(privateKeyList),
  VERIFY_SHARE: withDefault(share, "1"),
  VERIFIER_INTERVAL_MS: withDefault(integer(10, 3_600_000), "500"),
  VERIFIER_MODEL_CACHE_DIR: optional(z.string()),
  OFFCHAIN_NODE_PRIVATE_KEY: optional(
    z
      .string()
      .trim()
      .regex(/^0x[0-9a-fA-F]{64}$/, "must be a private key: 0x followed by 64 hex digits"),
  ),
  BATCH_MAX_LEAVES: withDefault(integer(1, 2 ** 32 - 1), "64"),
  BATCH_MAX_WAIT_MS: withDefault(integer(0, 86_400_000), "5000"),
  OFFCHAIN_MODEL_CACHE_DIR: optional(z.string()),
});

/** Variables whose value must never appear in an error message or a log. */
const SECRET_FIELDS: ReadonlySet<string> = new Set([
  "KEEPER_PRIVATE_KEY",
  "VERIFIER_PRIVATE_KEYS",
  "OFFCHAIN_NODE_PRIVATE_KEY",
]);

export interface RelayerConfig {
  rpcUrl: string;
  redisUrl: string;
  deploymentsDir: string;
  /** Unset: decided by `resolveChainSettings` once the chain id is known. */
  confirmations: number | undefined;
  pollIntervalMs: number;
  logChunkBlocks: number;
  /** Unset: the deployment file's `deployedAtBlock`, else 0. */
  startBlock: bigint | undefined;
  maxBatch: number;
  queueName: string;
  httpHost: string;
  httpPort: number;
  /**
   * Base of the model URIs this relayer hands out. Unset: `http://HTTP_HOST:HTTP_PORT`, with the
   * port the server actually bound (so HTTP_PORT=0 works).
   */
  publicUrl: string | undefined;
  storeDir: string;
  maxModelBytes: number;
  logLevel: LogLevel;
  /**
   * The settlement keeper (docs/relayer.md, "The keeper"); present only when KEEPER_PRIVATE_KEY
   * is set, absent otherwise (no keeper runs).
   */
  keeper?: KeeperConfig;
  /**
   * The verifier (docs/verifier.md); present only when VERIFIER_PRIVATE_KEYS is set, absent
   * otherwise (no verifier runs).
   */
  verifier?: VerifierConfig;
  /**
   * Off-chain inference (`POST /inference`) and its batch poster (docs/relayer.md, "Off-chain
   * inference"); present only when OFFCHAIN_NODE_PRIVATE_KEY is set.
   */
  offchain?: OffchainConfig;
}

export interface OffchainConfig {
  /** An active INFERENCE node's key: the node payers approve, which posts the batches. */
  privateKey: Hex;
  /** Post a batch as soon as it holds this many results. */
  maxLeaves: number;
  /** Post a batch this long after its first result, however few it holds. */
  maxWaitMs: number;
  /** Where verified model bytes are cached. */
  modelCacheDir: string;
}

export interface KeeperConfig {
  /** The key the keeper signs its finalize / refund transactions with. */
  privateKey: Hex;
  /** Pause between the keeper's loops. */
  intervalMs: number;
}

export interface VerifierConfig {
  /** The verifier identities this full node acts for (each a staked VERIFIER node); the first challenges. */
  privateKeys: Hex[];
  /** Share of successful results re-executed, 0..1 (1: all of them). */
  share: number;
  /** Pause between the verifier's loops. */
  intervalMs: number;
  /** Where verified model bytes are cached. */
  modelCacheDir: string;
}

/** A configuration variable is missing or malformed; `field` names it. */
export class ConfigError extends GradnetError {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super("CONFIG_INVALID", `invalid configuration: ${field} ${reason}`);
  }
}

/** Parse the environment into a config. Pure: `env` and `cwd` are all it reads. */
export function parseConfig(
  env: Readonly<Record<string, string | undefined>>,
  cwd: string = process.cwd(),
): RelayerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join(".") || "environment";
    const value = env[field];
    const shown = value === undefined || SECRET_FIELDS.has(field) ? "" : ` (got ${JSON.stringify(value)})`;
    throw new ConfigError(field, `${issue.message}${shown}`);
  }
  const e = parsed.data;
  return {
    rpcUrl: e.RPC_URL,
    redisUrl: e.REDIS_URL,
    deploymentsDir: path.resolve(cwd, e.DEPLOYMENTS_DIR ?? DEFAULT_DEPLOYMENTS_DIR),
    confirmations: e.CONFIRMATIONS,
    pollIntervalMs: e.POLL_INTERVAL_MS,
    logChunkBlocks: e.LOG_CHUNK_BLOCKS,
    startBlock: e.START_BLOCK,
    maxBatch: e.MAX_BATCH,
    queueName: e.QUEUE_NAME,
    httpHost: e.HTTP_HOST,
    httpPort: e.HTTP_PORT,
    publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ""),
    storeDir: path.resolve(cwd, e.STORE_DIR ?? path.join(".gradnet", "store")),
    maxModelBytes: e.MAX_MODEL_BYTES,
    logLevel: e.LOG_LEVEL,
    ...(e.KEEPER_PRIVATE_KEY === undefined
      ? {}
      : { keeper: { privateKey: e.KEEPER_PRIVATE_KEY as Hex, intervalMs: e.KEEPER_INTERVAL_MS } }),
    ...(e.VERIFIER_PRIVATE_KEYS === undefined
      ? {}
      : {
          verifier: {
            privateKeys: e.VERIFIER_PRIVATE_KEYS as Hex[],
            share: e.VERIFY_SHARE,
            intervalMs: e.VERIFIER_INTERVAL_MS,
            modelCacheDir: path.resolve(
              cwd,
              e.VERIFIER_MODEL_CACHE_DIR ?? path.join(".gradnet", "verifier-models"),
            ),
          },
        }),
    ...(e.OFFCHAIN_NODE_PRIVATE_KEY === undefined
      ? {}
      : {
          offchain: {
            privateKey: e.OFFCHAIN_NODE_PRIVATE_KEY as Hex,
            maxLeaves: e.BATCH_MAX_LEAVES,
            maxWaitMs: e.BATCH_MAX_WAIT_MS,
            modelCacheDir: path.resolve(
              cwd,
              e.OFFCHAIN_MODEL_CACHE_DIR ?? path.join(".gradnet", "offchain-models"),
            ),
          },
        }),
  };
}

/** Confirmations when CONFIRMATIONS is unset: none on the instant-mining devnet, else 2. */
export function defaultConfirmations(chainId: number): number {
  return chainId === DEVNET_CHAIN_ID ? 0 : 2;
}

export interface ChainSettings {
  chainId: number;
  confirmations: number;
  startBlock: bigint;
}

/** The chain-dependent settings, from the config, the chain id and the deployment file (if any). */
export function resolveChainSettings(
  config: Pick<RelayerConfig, "confirmations" | "startBlock">,
  chainId: number,
  deployedAtBlock: number | undefined,
): ChainSettings {
  return {
    chainId,
    confirmations: config.confirmations ?? defaultConfirmations(chainId),
    startBlock: config.startBlock ?? BigInt(deployedAtBlock ?? 0),
  };
}

/** `http://HTTP_HOST:PORT`, with IPv6 hosts bracketed and wildcard hosts shown as loopback. */
export function defaultPublicUrl(host: string, port: number): string {
  const shown = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : host;
  return `http://${shown.includes(":") && !shown.startsWith("[") ? `[${shown}]` : shown}:${port}`;
}
