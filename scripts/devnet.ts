/**
 * The gradnet devnet in one command: `npm run devnet`.
 *
 * Starts a Hardhat JSON-RPC node, deploys the system contracts at their fixed addresses,
 * starts the full node (relayer, keeper and verifier), uploads and registers the demo models,
 * stakes two inference nodes and three verifiers, deploys the example dApp, starts two workers,
 * starts the ETH/USD data feed with three data nodes and its example dApp (scripts/devnetFeeds.ts),
 * and prints what is running. Ctrl-C stops every process it started. `startDevnet()` does the
 * same for the end-to-end tests, which may also ask for workers that answer wrong on purpose.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import {
  createPublicClient,
  createWalletClient,
  http,
  parseEther,
  toHex,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { mnemonicToAccount, privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { checkpointKey, verifierCheckpointKey } from "../node";
import { FIXED_ADDRESSES, Roles, modelRegistryAbi, nodeRegistryAbi } from "../sdk";
import { feedsSummary, startDevnetFeeds, type DevnetFeedsInfo } from "./devnetFeeds";

const ROOT = path.resolve(__dirname, "..");
const MNEMONIC = "test test test test test test test test test test test junk";
const BIN = (name: string) => path.join(ROOT, "node_modules", ".bin", name);
export const BLOCK_INTERVAL_MS = 1000;

/** Hardhat's well-known development accounts; never use them on a real chain. */
export function devAccount(index: number) {
  const hd = mnemonicToAccount(MNEMONIC, { addressIndex: index });
  const key = toHex(hd.getHdKey().privateKey!);
  return { address: hd.address, privateKey: key, account: privateKeyToAccount(key) };
}

/**
 * Which development account does what on the devnet. The full node acts for the three
 * `verifiers`; `extraWorkers` are the accounts of workers beyond the first two.
 */
export const DEVNET_ROLES = {
  deployer: 0,
  modelOwner: 1,
  workers: [2, 3],
  user: 4,
  keeper: 5,
  verifiers: [7, 8, 9],
  dataNodes: [10, 11, 12],
  extraWorkers: [13, 14, 15, 16, 17, 18],
} as const;

/** Share of results the devnet's full node re-executes: all of them. */
export const DEVNET_VERIFY_SHARE = 1;

/** The development account of the `k`-th worker the devnet starts (0-based). */
export function workerAccountIndex(k: number): number {
  const all = [...DEVNET_ROLES.workers, ...DEVNET_ROLES.extraWorkers];
  const index = all[k];
  if (index === undefined) throw new RangeError(`the devnet has accounts for ${all.length} workers`);
  return index;
}

/** How one devnet worker behaves. */
export interface DevnetWorkerOptions {
  /**
   * Testing aid: the worker answers every request deliberately wrong (FAULT_CORRUPT_OUTPUTS), so
   * the full node challenges it and the committee slashes it. Default false.
   */
  faultCorruptOutputs?: boolean;
  /** Where its /metrics and /health listen; default 9464 + its number. */
  metricsPort?: number;
}

export interface DevnetOptions {
  rpcPort?: number;
  relayerPort?: number;
  /** Metrics ports of the workers, in order (each worker's `metricsPort` wins). */
  metricsPorts?: number[];
  /** The workers to start; default two honest ones. `[{ faultCorruptOutputs: true }]` runs only a liar. */
  workers?: DevnetWorkerOptions[];
  redisUrl?: string;
  /** Where deployments, the model store, caches and logs go. */
  stateDir?: string;
  queueName?: string;
  /** Stream every process's logs to this terminal instead of log files. */
  verbose?: boolean;
  log?: (line: string) => void;
}

export interface ModelEntry {
  name: string;
  modelId: Hex;
  uri: string;
  fee: string;
}

export interface DevnetInfo {
  chainId: number;
  rpcUrl: string;
  relayerUrl: string;
  redisUrl: string;
  queueName: string;
  deploymentsDir: string;
  contracts: typeof FIXED_ADDRESSES;
  models: ModelEntry[];
  workers: DevnetWorker[];
  /** The verifier identities the full node acts for (staked VERIFIER nodes). */
  verifiers: Address[];
  verifyShare: number;
  keeper: Address;
  /** The inference node behind the relayer's `POST /inference` (the first worker's account). */
  offchainNode: Address;
  classifier: Address;
  /** The ETH/USD feed, its data nodes and the FeedTrendConsumer example dApp. */
  dataFeeds: DevnetFeedsInfo;
  logsDir: string;
}

export interface DevnetWorker {
  address: Address;
  metricsUrl: string;
  faultCorruptOutputs: boolean;
}

export interface Devnet {
  info: DevnetInfo;
  /** Stake another inference node and start its worker (the next unused extra account). */
  addWorker(opts?: DevnetWorkerOptions): Promise<DevnetWorker>;
  /** Stop one worker's process (its stake stays); resolves once it has exited. */
  stopWorker(address: Address): Promise<void>;
  stop(): Promise<void>;
}

interface Manifest {
  models: {
    name: string;
    file: string;
    sha256: Hex;
    decimals: number;
    fee: string;
    ownerShareBps: number;
    schema: {
      inputs: { name: string; dtype: number; shape: number[] }[];
      outputs: { name: string; dtype: number; shape: number[] }[];
    };
  }[];
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  child?: ChildProcess,
): Promise<T> {
  const started = Date.now();
  let lastError: unknown;
  while (Date.now() - started < timeoutMs) {
    if (child !== undefined && child.exitCode !== null)
      throw new Error(`${what}: the process exited with code ${child.exitCode}`);
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    await sleep(200);
  }
  throw new Error(
    `${what}: not ready after ${timeoutMs} ms${lastError ? ` (${(lastError as Error).message})` : ""}`,
  );
}

/** A TCP port that nothing listens on right now (for tests and benchmarks). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

function redisAnswers(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(u.port || 6379), u.hostname, () => sock.write("PING\r\n"));
    sock.setTimeout(1000, () => (sock.destroy(), resolve(false)));
    sock.once(
      "data",
      (d) => (sock.destroy(), resolve(d.toString().startsWith("+PONG") || d.toString().includes("NOAUTH"))),
    );
    sock.once("error", () => resolve(false));
  });
}

async function resetQueue(redisUrl: string, queueName: string, checkpoints: string[]): Promise<void> {
  const queue = new Queue(queueName, { connection: { url: redisUrl } });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  try {
    await queue.obliterate({ force: true });
    await redis.del(...checkpoints);
  } finally {
    await queue.close();
    await redis.quit();
  }
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? "").split(path.delimiter).some((dir) => fs.existsSync(path.join(dir, bin)));
}

export async function startDevnet(opts: DevnetOptions = {}): Promise<Devnet> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const rpcPort = opts.rpcPort ?? 8545;
  const relayerPort = opts.relayerPort ?? 8080;
  const workerOptions = opts.workers ?? [{}, {}];
  const stateDir = path.resolve(opts.stateDir ?? path.join(ROOT, ".gradnet"));
  const logsDir = path.join(stateDir, "logs");
  const deploymentsDir =
    opts.stateDir === undefined ? path.join(ROOT, "deployments") : path.join(stateDir, "deployments");
  const queueName = opts.queueName ?? "gradnet-inference";
  fs.mkdirSync(logsDir, { recursive: true });
  const children: { name: string; proc: ChildProcess }[] = [];
  /** What runs inside this process (the data nodes and their price source). */
  const inProcess: (() => Promise<void>)[] = [];

  const stop = async () => {
    for (const close of inProcess.splice(0).reverse()) await close().catch(() => undefined);
    for (const { proc } of [...children].reverse()) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    }
    await Promise.all(
      children.map(
        ({ proc }) =>
          new Promise<void>((resolve) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
            const t = setTimeout(() => (proc.kill("SIGKILL"), resolve()), 5000);
            proc.once("exit", () => (clearTimeout(t), resolve()));
          }),
      ),
    );
  };

  const run = (name: string, cmd: string, args: string[], env: Record<string, string>): ChildProcess => {
    const proc = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (opts.verbose) {
      const prefix = (d: Buffer) =>
        d
          .toString()
          .split("\n")
          .filter(Boolean)
          .forEach((l) => log(`[${name}] ${l}`));
      proc.stdout!.on("data", prefix);
      proc.stderr!.on("data", prefix);
    } else {
      const out = fs.createWriteStream(path.join(logsDir, `${name}.log`), { flags: "a" });
      proc.stdout!.pipe(out);
      proc.stderr!.pipe(out);
    }
    children.push({ name, proc });
    return proc;
  };

  try {
    // Redis: REDIS_URL, else a local one, else start redis-server, else explain.
    let redisUrl = opts.redisUrl ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
    if (!(await redisAnswers(redisUrl))) {
      if (opts.redisUrl !== undefined || process.env.REDIS_URL !== undefined) {
        throw new Error(`Redis does not answer at ${redisUrl}`);
      }
      if (!onPath("redis-server")) {
        throw new Error(
          "gradnet needs Redis. Start one on 127.0.0.1:6379, set REDIS_URL, or install redis-server " +
            "(Debian/Ubuntu: sudo apt-get install -y redis-server) and run this again.",
        );
      }
      log("starting redis-server on 127.0.0.1:6379");
      const redis = run(
        "redis",
        "redis-server",
        ["--port", "6379", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        {},
      );
      redisUrl = "redis://127.0.0.1:6379";
      await waitFor(
        "redis-server",
        async () => ((await redisAnswers(redisUrl)) ? true : undefined),
        10_000,
        redis,
      );
    }

    // The chain.
    if (!(await portFree(rpcPort)))
      throw new Error(`port ${rpcPort} is in use; stop what runs there or pick another rpcPort`);
    const rpcUrl = `http://127.0.0.1:${rpcPort}`;
    log(`starting the Hardhat node on ${rpcUrl}`);
    const node = run(
      "hardhat",
      BIN("hardhat"),
      ["node", "--hostname", "127.0.0.1", "--port", String(rpcPort)],
      {},
    );
    const publicClient = createPublicClient({
      chain: hardhat,
      transport: http(rpcUrl),
      pollingInterval: 200,
    }) as PublicClient;
    await waitFor("hardhat node", async () => publicClient.getChainId(), 120_000, node);
    // Transactions are mined at once (automine); a block every second besides keeps chain time
    // moving on an idle devnet, so challenge windows and deadlines pass as they would on a chain.
    await publicClient.request({
      method: "evm_setIntervalMining" as never,
      params: [BLOCK_INTERVAL_MS] as never,
    });

    log("deploying the system contracts at their fixed addresses");
    const deploy = run("deploy", BIN("hardhat"), ["run", "deploy/deploy.ts", "--network", "localhost"], {
      RPC_URL: rpcUrl,
      DEPLOYMENTS_DIR: deploymentsDir,
    });
    const code = await new Promise<number | null>((r) => deploy.once("exit", r));
    if (code !== 0)
      throw new Error(`deployment failed (exit ${code}); see ${path.join(logsDir, "deploy.log")}`);

    // A fresh chain reuses request ids: clear what a previous devnet left in this queue (jobs
    // with the same ids would be dropped as duplicates) and the relayer's and verifier's
    // checkpoints (block numbers of the old chain).
    await resetQueue(redisUrl, queueName, [
      checkpointKey(hardhat.id, FIXED_ADDRESSES.inferenceHub, queueName),
      verifierCheckpointKey(
        hardhat.id,
        FIXED_ADDRESSES.inferenceHub,
        queueName,
        devAccount(DEVNET_ROLES.verifiers[0]).address,
      ),
    ]);

    // The relayer: queue, model store, HTTP API.
    const relayerUrl = `http://127.0.0.1:${relayerPort}`;
    if (!(await portFree(relayerPort)))
      throw new Error(`port ${relayerPort} is in use; pick another relayerPort`);
    log(`starting the relayer on ${relayerUrl}`);
    const relayer = run("relayer", BIN("tsx"), ["node/main.ts"], {
      RPC_URL: rpcUrl,
      REDIS_URL: redisUrl,
      DEPLOYMENTS_DIR: deploymentsDir,
      QUEUE_NAME: queueName,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(relayerPort),
      STORE_DIR: path.join(stateDir, "store"),
      CONFIRMATIONS: "0",
      POLL_INTERVAL_MS: "100",
      // The settlement keeper: finalises answered requests, refunds expired ones.
      KEEPER_PRIVATE_KEY: devAccount(DEVNET_ROLES.keeper).privateKey,
      KEEPER_INTERVAL_MS: "500",
      // The verifier: re-executes every result, challenges wrong ones, votes on disputes.
      VERIFIER_PRIVATE_KEYS: DEVNET_ROLES.verifiers.map((i) => devAccount(i).privateKey).join(","),
      VERIFY_SHARE: String(DEVNET_VERIFY_SHARE),
      VERIFIER_INTERVAL_MS: "250",
      VERIFIER_MODEL_CACHE_DIR: path.join(stateDir, "models-verifier"),
      // Off-chain inference (POST /inference), paid from BatchSettlement deposits: the first
      // worker's node (staked INFERENCE) answers over HTTP and posts the Merkle batches.
      OFFCHAIN_NODE_PRIVATE_KEY: devAccount(DEVNET_ROLES.workers[0]).privateKey,
      OFFCHAIN_MODEL_CACHE_DIR: path.join(stateDir, "models-offchain"),
      BATCH_MAX_LEAVES: "64",
      BATCH_MAX_WAIT_MS: "5000",
    });
    await waitFor(
      "relayer",
      async () => ((await fetch(`${relayerUrl}/health`)).ok ? true : undefined),
      60_000,
      relayer,
    );

    // Demo models: upload to the store, register on chain.
    const manifest = JSON.parse(
      fs.readFileSync(path.join(ROOT, "models", "manifest.json"), "utf8"),
    ) as Manifest;
    const wallet = (index: number) =>
      createWalletClient({ chain: hardhat, transport: http(rpcUrl), account: devAccount(index).account });
    const owner = wallet(DEVNET_ROLES.modelOwner);
    const send = async (p: Promise<Hex>) => {
      const receipt = await publicClient.waitForTransactionReceipt({ hash: await p });
      if (receipt.status !== "success") throw new Error(`transaction ${receipt.transactionHash} reverted`);
      return receipt;
    };
    const models: ModelEntry[] = [];
    for (const m of manifest.models) {
      const bytes = fs.readFileSync(path.join(ROOT, "models", m.file));
      const res = await fetch(`${relayerUrl}/models`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: bytes,
      });
      if (!res.ok) throw new Error(`uploading ${m.file}: HTTP ${res.status} ${await res.text()}`);
      const { sha256, uri } = (await res.json()) as { sha256: Hex; uri: string };
      if (sha256 !== m.sha256)
        throw new Error(`${m.file} hashes to ${sha256}, the manifest says ${m.sha256}`);
      const schema = {
        inputs: m.schema.inputs.map((s) => ({ ...s, shape: s.shape.map(BigInt) })),
        outputs: m.schema.outputs.map((s) => ({ ...s, shape: s.shape.map(BigInt) })),
      };
      await send(
        owner.writeContract({
          address: FIXED_ADDRESSES.modelRegistry,
          abi: modelRegistryAbi,
          functionName: "registerModel",
          args: [m.sha256, uri, schema, m.decimals, BigInt(m.fee), m.ownerShareBps],
        }),
      );
      models.push({ name: m.name, modelId: m.sha256, uri, fee: m.fee });
      log(`registered model ${m.name} ${m.sha256}`);
    }

    // Staked inference nodes, one per worker.
    const minStake = async (role: number) => {
      const min = await publicClient.readContract({
        address: FIXED_ADDRESSES.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "minStake",
        args: [role],
      });
      return min > 0n ? min : parseEther("1");
    };
    const registerNode = async (index: number, role: number) =>
      send(
        wallet(index).writeContract({
          address: FIXED_ADDRESSES.nodeRegistry,
          abi: nodeRegistryAbi,
          functionName: "register",
          args: [role],
          value: await minStake(role),
        }),
      );
    for (const k of workerOptions.keys()) await registerNode(workerAccountIndex(k), Roles.INFERENCE);

    // Three staked verifiers, which the full node acts for: the dispute committee.
    for (const index of DEVNET_ROLES.verifiers) await registerNode(index, Roles.VERIFIER);

    // The example dApp: a classifier consumer for the Iris model.
    const iris = models.find((m) => m.name === "iris-mlp");
    if (iris === undefined) throw new Error("models/manifest.json has no iris-mlp");
    const artifact = JSON.parse(
      fs.readFileSync(
        path.join(ROOT, "artifacts/contracts/consumer/ClassifierConsumer.sol/ClassifierConsumer.json"),
        "utf8",
      ),
    ) as { abi: unknown[]; bytecode: Hex };
    const deployer = wallet(DEVNET_ROLES.deployer);
    const deployTx = await deployer.deployContract({
      abi: artifact.abi,
      bytecode: artifact.bytecode,
      args: [FIXED_ADDRESSES.inferenceHub, iris.modelId, "probabilities"],
    });
    const classifier = (await send(Promise.resolve(deployTx))).contractAddress!;

    // The workers.
    const workers: DevnetWorker[] = [];
    const workerProcs = new Map<string, ChildProcess>();
    const startWorker = async (k: number, w: DevnetWorkerOptions): Promise<DevnetWorker> => {
      const index = workerAccountIndex(k);
      const port = w.metricsPort ?? opts.metricsPorts?.[k] ?? 9464 + k;
      const faultCorruptOutputs = w.faultCorruptOutputs ?? false;
      const proc = run(`worker-${k + 1}`, BIN("tsx"), ["inference-worker/main.ts"], {
        RPC_URL: rpcUrl,
        REDIS_URL: redisUrl,
        DEPLOYMENTS_DIR: deploymentsDir,
        QUEUE_NAME: queueName,
        WORKER_PRIVATE_KEY: devAccount(index).privateKey,
        MODEL_CACHE_DIR: path.join(stateDir, `models-${k + 1}`),
        METRICS_PORT: String(port),
        POLL_INTERVAL_MS: "100",
        FAULT_CORRUPT_OUTPUTS: String(faultCorruptOutputs),
      });
      const metricsUrl = `http://127.0.0.1:${port}`;
      await waitFor(
        `worker ${k + 1}`,
        async () => ((await fetch(`${metricsUrl}/health`)).ok ? true : undefined),
        60_000,
        proc,
      );
      const worker = { address: devAccount(index).address, metricsUrl, faultCorruptOutputs };
      workers.push(worker);
      workerProcs.set(worker.address.toLowerCase(), proc);
      return worker;
    };
    for (const [k, w] of workerOptions.entries()) await startWorker(k, w);

    let started = workerOptions.length;
    const addWorker = async (w: DevnetWorkerOptions = {}): Promise<DevnetWorker> => {
      const k = started++;
      await registerNode(workerAccountIndex(k), Roles.INFERENCE);
      return startWorker(k, { ...w, metricsPort: w.metricsPort ?? (await freePort()) });
    };
    const stopWorker = async (address: Address): Promise<void> => {
      const proc = workerProcs.get(address.toLowerCase());
      if (proc === undefined) throw new Error(`no devnet worker ${address}`);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    };

    // The ETH/USD feed: a local price source, three data nodes in this process, the trend dApp.
    const trend = models.find((m) => m.name === "feed-trend");
    if (trend === undefined) throw new Error("models/manifest.json has no feed-trend");
    const feeds = await startDevnetFeeds({
      rpcUrl,
      publicClient,
      deploymentsDir,
      ownerKey: devAccount(DEVNET_ROLES.deployer).privateKey,
      dataNodeKeys: DEVNET_ROLES.dataNodes.map((i) => devAccount(i).privateKey),
      trendModelId: trend.modelId,
      logsDir,
      verbose: opts.verbose,
      log,
    });
    inProcess.push(feeds.stop);

    const info: DevnetInfo = {
      chainId: hardhat.id,
      rpcUrl,
      relayerUrl,
      redisUrl,
      queueName,
      deploymentsDir,
      contracts: FIXED_ADDRESSES,
      models,
      workers,
      verifiers: DEVNET_ROLES.verifiers.map((i) => devAccount(i).address),
      verifyShare: DEVNET_VERIFY_SHARE,
      keeper: devAccount(DEVNET_ROLES.keeper).address,
      offchainNode: devAccount(DEVNET_ROLES.workers[0]).address,
      classifier,
      dataFeeds: feeds.info,
      logsDir,
    };
    fs.writeFileSync(path.join(stateDir, "devnet.json"), JSON.stringify(info, null, 2) + "\n");
    return { info, addWorker, stopWorker, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What `npm run devnet` prints once everything is running. */
/** What the devnet prints once it runs; `more` goes before the last line (the CLI adds its hints). */
export function devnetSummary(info: DevnetInfo, more: readonly string[] = []): string {
  const lines = [
    "",
    "gradnet devnet is running",
    "",
    `  chain        ${info.rpcUrl}  (chain id ${info.chainId})`,
    `  relayer      ${info.relayerUrl}  (API docs ${info.relayerUrl}/docs, metrics ${info.relayerUrl}/metrics)`,
    `  redis        ${info.redisUrl}  queue "${info.queueName}"`,
    "",
    "  contracts",
    ...Object.entries(info.contracts).map(([k, v]) => `    ${k.padEnd(16)} ${v}`),
    "",
    "  models",
    ...info.models.map((m) => `    ${m.name.padEnd(14)} ${m.modelId}  fee ${m.fee} wei`),
    "",
    "  workers",
    ...info.workers.map(
      (w, i) =>
        `    worker-${i + 1}       ${w.address}  metrics ${w.metricsUrl}/metrics` +
        (w.faultCorruptOutputs ? "  (FAULT_CORRUPT_OUTPUTS: answers wrong on purpose)" : ""),
    ),
    "",
    "  full node    the relayer above, with a keeper and a verifier",
    `    keeper     ${info.keeper} (finalises answers after the challenge window, refunds expired requests)`,
    `    verifier   re-executes ${Math.round(info.verifyShare * 100)}% of results (VERIFY_SHARE=${info.verifyShare}), ` +
      "challenges wrong ones, votes on disputes, as the staked verifiers",
    ...info.verifiers.map((v) => `               ${v}`),
    `    off-chain  POST ${info.relayerUrl}/inference as node ${info.offchainNode} (worker-1): signed requests`,
    "               paid from a BatchSettlement deposit, posted as Merkle batches (docs/relayer.md)",
    "",
    ...feedsSummary(info.dataFeeds),
    "",
    `  example dApp  ClassifierConsumer at ${info.classifier}`,
    `  logs          ${info.logsDir}`,
    "",
    "  Try it:  npm run demo       (the example dApp asks the Iris classifier; the answer comes back on chain)",
    "           npm run demo:trend (a dApp asks the trend model about the ETH/USD feed's last 8 values)",
    "",
    ...more,
    "  Ctrl-C stops everything.",
  ];
  return lines.join("\n");
}

if (require.main === module) {
  const verbose = process.argv.includes("--verbose");
  startDevnet({ verbose }).then(
    (devnet) => {
      console.log(devnetSummary(devnet.info));
      const shutdown = () => {
        console.log("\nstopping the devnet");
        devnet.stop().then(() => process.exit(0));
      };
      process.once("SIGINT", shutdown);
      process.once("SIGTERM", shutdown);
    },
    (err: unknown) => {
      console.error(`devnet failed to start: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
