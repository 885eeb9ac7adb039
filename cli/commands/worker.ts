/** `gradnet worker`: start an inference worker from a config file, flags, or both. */
import fs from "node:fs";
import net from "node:net";
import pino from "pino";
import { privateKeyToAccount } from "viem/accounts";
import { Roles, nodeRegistryAbi } from "../../sdk";
import { connectChain } from "../chain";
import type { Context } from "../context";
import { InvalidInputError, UnreachableError, UsageError } from "../errors";
import { signingKey, type Env } from "../settings";
import { WORKER_CONFIG_KEYS, workerFlagName } from "../workerFlags";

/** Pure: a config file's text → env-style values. Keys are the worker's variable names. */
export function parseWorkerConfigFile(text: string, file: string, command = "worker"): Env {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`the worker config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new InvalidInputError(`the worker config ${file} must be a JSON object of settings`);
  const env: Env = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(WORKER_CONFIG_KEYS as readonly string[]).includes(key))
      throw new UsageError(
        `the worker config ${file} has an unknown setting "${key}"; settings are ${WORKER_CONFIG_KEYS.join(", ")}`,
        command,
      );
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")
      throw new UsageError(`the worker config ${file}: ${key} must be a string or a number`, command);
    env[key] = String(value);
  }
  return env;
}

/**
 * Pure: the worker's settings, lowest precedence first: the devnet file, the environment, the
 * config file, the global --rpc/--key; the worker's own flags (passed separately) win over all.
 */
export function workerEnv(layers: {
  devnet?: { rpcUrl?: string; redisUrl?: string; queueName?: string; deploymentsDir?: string };
  env: Env;
  file: Env;
  rpc?: string;
  key?: string;
}): Env {
  const merged: Env = {};
  const d = layers.devnet;
  if (d !== undefined) {
    merged.RPC_URL = d.rpcUrl;
    merged.REDIS_URL = d.redisUrl;
    merged.QUEUE_NAME = d.queueName;
    merged.DEPLOYMENTS_DIR = d.deploymentsDir;
  }
  if (layers.env.GRADNET_RPC_URL) merged.RPC_URL = layers.env.GRADNET_RPC_URL;
  if (layers.env.GRADNET_PRIVATE_KEY) merged.WORKER_PRIVATE_KEY = layers.env.GRADNET_PRIVATE_KEY;
  for (const key of WORKER_CONFIG_KEYS) if (layers.env[key]) merged[key] = layers.env[key];
  for (const [key, value] of Object.entries(layers.file)) if (value !== undefined) merged[key] = value;
  if (layers.rpc !== undefined) merged.RPC_URL = layers.rpc;
  if (layers.key !== undefined) merged.WORKER_PRIVATE_KEY = layers.key;
  return Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined && v !== ""));
}

function redisAnswers(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(u.port || 6379), u.hostname, () => sock.write("PING\r\n"));
    sock.setTimeout(2000, () => (sock.destroy(), resolve(false)));
    sock.once("data", (d) => {
      sock.destroy();
      const text = d.toString();
      resolve(text.startsWith("+PONG") || text.includes("NOAUTH"));
    });
    sock.once("error", () => resolve(false));
  });
}

export async function worker(ctx: Context): Promise<void> {
  const { parseWorkerConfig, startWorker } = await import("../../inference-worker");
  const configFile = ctx.flag("config");
  let file: Env = {};
  if (configFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(configFile, "utf8");
    } catch (err) {
      throw new InvalidInputError(
        `cannot read the worker config ${configFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    file = parseWorkerConfigFile(text, configFile, ctx.command);
  }
  const env = workerEnv({
    devnet: ctx.settings.devnet,
    env: ctx.io.env,
    file,
    rpc: ctx.flag("rpc"),
    key: ctx.flag("key"),
  });
  const argv: string[] = [];
  for (const key of WORKER_CONFIG_KEYS) {
    const v = ctx.flag(workerFlagName(key));
    if (v !== undefined) argv.push(`--${workerFlagName(key)}`, v);
  }

  // The chain first: its id decides whether the devnet's default key applies.
  const keyGiven = env.WORKER_PRIVATE_KEY !== undefined || argv.includes("--worker-private-key");
  const placeholder = keyGiven ? {} : { WORKER_PRIVATE_KEY: `0x${"1".repeat(64)}` };
  const provisional = parseWorkerConfig({ ...env, ...placeholder }, argv);
  const conn = await connectChain({
    ...ctx.settings,
    rpcUrl: provisional.RPC_URL,
    deploymentsDir: provisional.DEPLOYMENTS_DIR,
  });
  if (!keyGiven)
    env.WORKER_PRIVATE_KEY = signingKey({ ...ctx.settings, key: undefined }, conn.chainId, ctx.command);
  const config = parseWorkerConfig(env, argv);
  if (!(await redisAnswers(config.REDIS_URL)))
    throw new UnreachableError(
      "Redis",
      config.REDIS_URL,
      "start redis-server (or `gradnet devnet`, which starts it), or pass --redis-url",
    );

  const address = privateKeyToAccount(config.WORKER_PRIVATE_KEY as `0x${string}`).address;
  const active = await conn.publicClient.readContract({
    address: conn.addresses.nodeRegistry,
    abi: nodeRegistryAbi,
    functionName: "isActive",
    args: [address, Roles.INFERENCE],
  });
  if (!active)
    ctx.note(
      `warning: ${address} is not an active inference node, so the hub will refuse its answers; ` +
        "stake it with `gradnet node register --roles inference`",
    );
  const logger = pino({ level: config.LOG_LEVEL }, pino.destination(2));
  const running = await startWorker(config, logger);
  ctx.printJson({
    address: running.address,
    queue: config.QUEUE_NAME,
    rpcUrl: config.RPC_URL,
    redisUrl: config.REDIS_URL,
    metricsUrl: running.metricsUrl ?? null,
  });
  ctx.print(
    `worker ${running.address} is taking jobs from queue "${config.QUEUE_NAME}" at ${config.REDIS_URL}` +
      `${running.metricsUrl === undefined ? "" : `; metrics at ${running.metricsUrl}/metrics`}. Ctrl-C stops it.`,
  );
  const signal = await ctx.io.untilStopped();
  ctx.note(`${signal}: stopping the worker`);
  await running.stop();
}
