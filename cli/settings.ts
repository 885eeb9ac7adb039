/**
 * Where the CLI points: RPC, relayer, signing key, and what the local devnet wrote about itself
 * (.gradnet/devnet.json). Resolved once per command from flags, environment and that file.
 */
import fs from "node:fs";
import path from "node:path";
import type { Hex } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { DEVNET_CHAIN_ID } from "../sdk";
import { InvalidInputError, UsageError } from "./errors";
import type { FlagValues } from "./args";

export const REPO_ROOT = path.resolve(__dirname, "..");
export const DEFAULT_RPC_URL = "http://127.0.0.1:8545";
export const DEFAULT_RELAYER_URL = "http://127.0.0.1:8080";

/** What `gradnet devnet` writes to <state dir>/devnet.json (the fields the CLI reads). */
export interface DevnetFile {
  chainId?: number;
  rpcUrl?: string;
  relayerUrl?: string;
  redisUrl?: string;
  queueName?: string;
  deploymentsDir?: string;
  models?: { name: string; modelId: Hex; uri: string; fee: string }[];
  workers?: { address: Hex; metricsUrl: string }[];
}

export type Env = Record<string, string | undefined>;

export interface Settings {
  rpcUrl: string;
  relayerUrl: string;
  /** The key from --key or GRADNET_PRIVATE_KEY; undefined means "the devnet default, if on the devnet". */
  key: Hex | undefined;
  json: boolean;
  /** The devnet file, when there is one. */
  devnet: DevnetFile | undefined;
  devnetFile: string;
  /** deployments/ of the devnet the RPC points at, when it is the devnet file's chain. */
  deploymentsDir: string | undefined;
}

export function devnetFilePath(env: Env): string {
  return env.GRADNET_DEVNET ?? path.join(REPO_ROOT, ".gradnet", "devnet.json");
}

/** Read the devnet file: undefined when it does not exist (and was not asked for by name). */
export function readDevnetFile(env: Env): DevnetFile | undefined {
  const file = devnetFilePath(env);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && env.GRADNET_DEVNET === undefined)
      return undefined;
    throw new InvalidInputError(
      `cannot read the devnet file ${file} (GRADNET_DEVNET): ${(err as Error).message}`,
    );
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw new Error("not an object");
    return parsed as DevnetFile;
  } catch (err) {
    throw new InvalidInputError(`the devnet file ${file} is not JSON of a devnet: ${(err as Error).message}`);
  }
}

const KEY_PATTERN = /^0x[0-9a-fA-F]{64}$/;

/** Pure: flags over environment over the devnet file over built-in defaults. */
export function resolveSettings(flags: FlagValues, env: Env, devnet: DevnetFile | undefined): Settings {
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const rpcUrl = str(flags.rpc) ?? str(env.GRADNET_RPC_URL) ?? devnet?.rpcUrl ?? DEFAULT_RPC_URL;
  const relayerUrl = (
    str(flags.relayer) ??
    str(env.GRADNET_RELAYER_URL) ??
    devnet?.relayerUrl ??
    DEFAULT_RELAYER_URL
  ).replace(/\/+$/, "");
  for (const [flag, url] of [
    ["rpc", rpcUrl],
    ["relayer", relayerUrl],
  ] as const) {
    if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`--${flag} must be an http(s) URL; got "${url}"`);
  }
  const keyText = str(flags.key) ?? str(env.GRADNET_PRIVATE_KEY);
  if (keyText !== undefined && !KEY_PATTERN.test(keyText))
    throw new UsageError(
      `${str(flags.key) !== undefined ? "--key" : "GRADNET_PRIVATE_KEY"} must be 0x followed by 64 hex digits`,
    );
  return {
    rpcUrl,
    relayerUrl,
    key: keyText as Hex | undefined,
    json: flags.json === true,
    devnet,
    devnetFile: devnetFilePath(env),
    deploymentsDir: devnet !== undefined && devnet.rpcUrl === rpcUrl ? devnet.deploymentsDir : undefined,
  };
}

/** Hardhat's well-known development accounts (never use them on a real chain). */
const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";
/** The devnet's user account (Hardhat #4): the CLI signs with it on chain 31337 when given no key. */
export const DEVNET_USER_INDEX = 4;

export function devnetUserKey(): Hex {
  const hd = mnemonicToAccount(HARDHAT_MNEMONIC, { addressIndex: DEVNET_USER_INDEX });
  return `0x${Buffer.from(hd.getHdKey().privateKey!).toString("hex")}`;
}

/** The key to sign with on `chainId`: the given one, or the devnet user's on the devnet. */
export function signingKey(settings: Settings, chainId: number, command: string): Hex {
  if (settings.key !== undefined) return settings.key;
  if (chainId === DEVNET_CHAIN_ID) return devnetUserKey();
  throw new UsageError(
    `this command sends a transaction: pass --key <hex> or set GRADNET_PRIVATE_KEY (chain ${chainId} is not the devnet)`,
    command,
  );
}
