/**
 * The relayer process: chain watcher → BullMQ queue, model store and HTTP API, (with
 * KEEPER_PRIVATE_KEY) the settlement keeper and (with VERIFIER_PRIVATE_KEYS) the verifier, which
 * re-executes results, challenges wrong ones and votes on disputes: together, a full node.
 *
 *   npx tsx node/main.ts                 # configured from the environment (docs/relayer.md)
 *
 * `startRelayer(config)` runs the same thing in-process, for tests and the devnet script.
 */
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import pino, { type Logger } from "pino";
import { createPublicClient, http, type Address, type PublicClient } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { ModelCache } from "../inference-worker";
import { GradnetError, readDeployment, resolveAddresses, type Addresses } from "../sdk";
import { buildApi } from "./api";
import {
  BatchPoster,
  BatchStore,
  createBatchPosterMetrics,
  readBatchRoot,
  viemBatchChain,
} from "./batchPoster";
import { viemHubReader, type HubReader } from "./chain";
import {
  ConfigError,
  defaultPublicUrl,
  parseConfig,
  resolveChainSettings,
  type ChainSettings,
  type OffchainConfig,
  type RelayerConfig,
  type VerifierConfig,
} from "./config";
import { Keeper, createKeeperMetrics, keeperCheckpointKey, viemKeeperChain } from "./keeper";
import { createMetrics, type RelayerMetrics } from "./metrics";
import {
  OffchainService,
  createOffchainMetrics,
  offchainNonceKey,
  redisNonceStore,
  viemOffchainChain,
} from "./offchain";
import { ModelStore } from "./store";
import {
  Verifier,
  createVerifierMetrics,
  samplingSecret,
  verifierCheckpointKey,
  viemVerifierChain,
  workerAnswerSource,
} from "./verifier";
import { ChainWatcher, checkpointKey, redisCheckpointStore, type QueuedJob } from "./watcher";
import { runAsProcess } from "./service";

export interface Relayer {
  app: FastifyInstance;
  watcher: ChainWatcher;
  queue: Queue;
  store: ModelStore;
  metrics: RelayerMetrics;
  logger: Logger;
  chain: ChainSettings;
  addresses: Addresses;
  /** The Redis key holding the checkpoint. */
  checkpointKey: string;
  /** The settlement keeper; undefined when KEEPER_PRIVATE_KEY is not set. */
  keeper: Keeper | undefined;
  /** The verifier; undefined when VERIFIER_PRIVATE_KEYS is not set. */
  verifier: Verifier | undefined;
  /** Off-chain inference and its batch poster; undefined when OFFCHAIN_NODE_PRIVATE_KEY is not set. */
  offchain: { service: OffchainService; poster: BatchPoster } | undefined;
  /** Where the HTTP API listens. */
  url: string;
  /** Base of the model URIs handed out. */
  publicUrl: string;
  /**
   * Stop the watcher (after its current chunk), the keeper, the verifier and the batch poster
   * (after posting what it holds), close the server, the queue and Redis.
   */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Use this logger instead of a new pino logger at `config.logLevel`. */
  logger?: Logger;
}

/** The chain id could not be read at start: the RPC is down or not an Ethereum node. */
export class RpcUnavailableError extends GradnetError {
  constructor(
    readonly rpcUrl: string,
    options?: { cause?: unknown },
  ) {
    super("RPC_UNAVAILABLE", `cannot read the chain id from ${rpcUrl}; is the node running?`, options);
  }
}

export async function startRelayer(config: RelayerConfig, opts: StartOptions = {}): Promise<Relayer> {
  const logger = opts.logger ?? pino({ level: config.logLevel, name: "gradnet-relayer" });

  const publicClient = createPublicClient({
    transport: http(config.rpcUrl, { retryCount: 2, timeout: 15_000 }),
  });
  let chainId: number;
  try {
    chainId = await publicClient.getChainId();
  } catch (err) {
    throw new RpcUnavailableError(config.rpcUrl, { cause: err });
  }
  const addresses = resolveAddresses(chainId, config.deploymentsDir);
  let deployedAtBlock: number | undefined;
  try {
    deployedAtBlock = readDeployment(chainId, config.deploymentsDir).deployedAtBlock;
  } catch {
    deployedAtBlock = undefined; // devnet without a deployment file: fixed addresses, from block 0
  }
  const chain = resolveChainSettings(config, chainId, deployedAtBlock);
  const hub: Address = addresses.inferenceHub;
  const reader = viemHubReader(publicClient, hub, BigInt(deployedAtBlock ?? 0));

  const code = await publicClient.getCode({ address: hub }).catch(() => undefined);
  if (code === undefined || code === "0x") {
    logger.warn({ hub, chainId }, "no contract code at the InferenceHub address yet; watching anyway");
  }

  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3, enableOfflineQueue: true });
  redis.on("error", (err: Error) => logger.warn({ err: err.message }, "redis connection error"));
  const queue = new Queue(config.queueName, { connection: redis });
  queue.on("error", (err: Error) => logger.warn({ err: err.message }, "queue error"));

  const store = new ModelStore(config.storeDir);
  await store.init();
  // Leaves of the Merkle batches posted from this store directory, served as proofs.
  const batchStore = new BatchStore(path.join(config.storeDir, "batches"));
  const metrics = createMetrics();
  const key = checkpointKey(chainId, hub, config.queueName);

  const watcher = new ChainWatcher({
    chainId,
    reader,
    sink: { addBulk: (jobs: QueuedJob[]) => queue.addBulk(jobs) },
    checkpoints: redisCheckpointStore(redis, key),
    confirmations: chain.confirmations,
    startBlock: chain.startBlock,
    logChunkBlocks: config.logChunkBlocks,
    maxBatch: config.maxBatch,
    pollIntervalMs: config.pollIntervalMs,
    logger: logger.child({ component: "watcher" }),
    metrics,
  });

  const offchain =
    config.offchain === undefined
      ? undefined
      : buildOffchain({
          config,
          offchainConfig: config.offchain,
          publicClient: publicClient as PublicClient,
          chainId,
          addresses,
          batchStore,
          redis,
          logger,
          metrics,
        });
  if (offchain !== undefined) await offchain.poster.recover();

  let publicUrl = config.publicUrl ?? defaultPublicUrl(config.httpHost, config.httpPort);
  let app: FastifyInstance;
  try {
    app = await buildApi({
      chainId,
      reader,
      store,
      queue,
      redis,
      watcher,
      metrics,
      logger: logger.child({ component: "api" }),
      maxModelBytes: config.maxModelBytes,
      publicUrl: () => publicUrl,
      batches: {
        store: batchStore,
        rootOf: (batchId) => readBatchRoot(publicClient, addresses.batchSettlement, batchId),
      },
      ...(offchain === undefined ? {} : { offchain: offchain.service }),
    });
    await app.listen({ host: config.httpHost, port: config.httpPort });
  } catch (err) {
    await offchain?.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    redis.disconnect();
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  const url = defaultPublicUrl(config.httpHost, address.port);
  if (config.publicUrl === undefined) publicUrl = url;

  let keeper: Keeper | undefined;
  if (config.keeper !== undefined) {
    keeper = new Keeper({
      chain: viemKeeperChain({
        publicClient: publicClient as PublicClient,
        rpcUrl: config.rpcUrl,
        privateKey: config.keeper.privateKey,
        hub,
        settlement: addresses.settlement,
      }),
      startBlock: chain.startBlock,
      confirmations: chain.confirmations,
      logChunkBlocks: config.logChunkBlocks,
      intervalMs: config.keeper.intervalMs,
      checkpoints: redisCheckpointStore(redis, keeperCheckpointKey(chainId, hub)),
      logger: logger.child({ component: "keeper" }),
      metrics: createKeeperMetrics(metrics.registry),
    });
  }

  const verifier =
    config.verifier === undefined
      ? undefined
      : buildVerifier({
          config,
          verifierConfig: config.verifier,
          publicClient: publicClient as PublicClient,
          chain,
          addresses,
          reader,
          deployedAtBlock,
          redis,
          logger: logger.child({ component: "verifier" }),
          metrics,
        });

  watcher.start();
  keeper?.start();
  verifier?.start();
  offchain?.poster.start();

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await Promise.all([watcher.stop(), keeper?.stop(), verifier?.stop()]);
      // No new off-chain request once the server is closed; then post what the poster holds.
      await app.close();
      await offchain?.close();
      await queue.close();
      await redis.quit().catch(() => redis.disconnect());
      logger.info({}, "relayer stopped");
    })());

  logger.info(
    {
      chainId,
      hub,
      queue: config.queueName,
      confirmations: chain.confirmations,
      startBlock: chain.startBlock.toString(),
      rpc: config.rpcUrl,
      api: url,
      docs: `${url}/docs`,
      publicUrl,
      store: store.dir,
      keeper: keeper?.stats().keeper ?? null,
      verifiers: verifier?.stats().verifiers ?? null,
      verifyShare: verifier?.stats().share ?? null,
      offchainNode: offchain?.service.info().node ?? null,
    },
    `gradnet relayer on chain ${chainId}: API ${url} (docs ${url}/docs), queue "${config.queueName}"`,
  );

  return {
    app,
    watcher,
    queue,
    store,
    metrics,
    logger,
    chain,
    addresses,
    checkpointKey: key,
    keeper,
    verifier,
    offchain: offchain === undefined ? undefined : { service: offchain.service, poster: offchain.poster },
    url,
    publicUrl,
    stop,
  };
}

/** Off-chain inference: the service behind `POST /inference` and the batch poster it feeds. */
function buildOffchain(deps: {
  config: RelayerConfig;
  offchainConfig: OffchainConfig;
  publicClient: PublicClient;
  chainId: number;
  addresses: Addresses;
  batchStore: BatchStore;
  redis: Redis;
  logger: Logger;
  metrics: RelayerMetrics;
}): { service: OffchainService; poster: BatchPoster; close(): Promise<void> } {
  const { config, offchainConfig: o, publicClient, chainId, addresses, logger } = deps;
  const batchChain = viemBatchChain({
    publicClient,
    rpcUrl: config.rpcUrl,
    privateKey: o.privateKey,
    batchSettlement: addresses.batchSettlement,
  });
  const node = batchChain.node;
  const poster = new BatchPoster({
    chain: batchChain,
    store: deps.batchStore,
    policy: { maxLeaves: o.maxLeaves, maxAgeMs: o.maxWaitMs },
    intervalMs: Math.max(50, Math.min(1000, Math.floor(o.maxWaitMs / 5))),
    logger: logger.child({ component: "batch-poster" }),
    metrics: createBatchPosterMetrics(deps.metrics.registry),
  });
  const models = new ModelCache({
    client: publicClient,
    modelRegistry: addresses.modelRegistry,
    cacheDir: o.modelCacheDir,
    maxModelBytes: config.maxModelBytes,
    logger: logger.child({ component: "offchain-models" }),
  });
  const service = new OffchainService({
    domain: { chainId, verifyingContract: addresses.batchSettlement },
    node,
    chain: viemOffchainChain({
      publicClient,
      modelRegistry: addresses.modelRegistry,
      batchSettlement: addresses.batchSettlement,
    }),
    nonces: redisNonceStore(deps.redis, (payer) =>
      offchainNonceKey(chainId, addresses.batchSettlement, node, payer),
    ),
    models,
    poster,
    batchPolicy: { maxLeaves: o.maxLeaves, maxWaitMs: o.maxWaitMs },
    logger: logger.child({ component: "offchain" }),
    metrics: createOffchainMetrics(deps.metrics.registry),
  });
  return {
    service,
    poster,
    async close() {
      await poster.stop();
      // Post what is still open, so served results are charged before the process ends.
      await poster
        .flush()
        .catch((err: unknown) =>
          logger.error(
            { err: err instanceof Error ? err.message : String(err), pending: poster.pendingResults() },
            "batch poster: could not post every batch before stopping; closed ones are posted on restart",
          ),
        );
      await models.close();
    },
  };
}

/** The verifier over shared connections (the relayer's, or startVerifier's own). */
function buildVerifier(deps: {
  config: RelayerConfig;
  verifierConfig: VerifierConfig;
  publicClient: PublicClient;
  chain: ChainSettings;
  addresses: Addresses;
  reader: HubReader;
  deployedAtBlock: number | undefined;
  redis: Redis;
  logger: Logger;
  metrics: RelayerMetrics;
}): Verifier {
  const { config, verifierConfig: v, publicClient, chain, addresses, logger } = deps;
  const hub = addresses.inferenceHub;
  return new Verifier({
    chain: viemVerifierChain({
      publicClient,
      rpcUrl: config.rpcUrl,
      privateKeys: v.privateKeys,
      hub,
      settlement: addresses.settlement,
      reader: deps.reader,
      searchFromBlock: BigInt(deps.deployedAtBlock ?? 0),
    }),
    answers: workerAnswerSource({
      models: new ModelCache({
        client: publicClient,
        modelRegistry: addresses.modelRegistry,
        cacheDir: v.modelCacheDir,
        maxModelBytes: config.maxModelBytes,
        logger,
      }),
      maxInputBytes: config.maxModelBytes,
    }),
    share: v.share,
    samplingSecret: samplingSecret(v.privateKeys[0]!),
    startBlock: chain.startBlock,
    confirmations: chain.confirmations,
    logChunkBlocks: config.logChunkBlocks,
    intervalMs: v.intervalMs,
    checkpoints: redisCheckpointStore(
      deps.redis,
      verifierCheckpointKey(chain.chainId, hub, config.queueName, privateKeyToAddress(v.privateKeys[0]!)),
    ),
    logger,
    metrics: createVerifierMetrics(deps.metrics.registry),
  });
}

export interface RunningVerifier {
  verifier: Verifier;
  metrics: RelayerMetrics;
  logger: Logger;
  chain: ChainSettings;
  addresses: Addresses;
  /** Stop the verifier, close its models and Redis. */
  stop(): Promise<void>;
}

/**
 * The verifier alone, without the relayer's watcher, queue and API: a full node that only checks
 * results and takes part in disputes. `config.verifier` must be set (VERIFIER_PRIVATE_KEYS);
 * Redis holds its checkpoint. `startRelayer` runs the same verifier next to the relayer.
 */
export async function startVerifier(
  config: RelayerConfig,
  opts: StartOptions = {},
): Promise<RunningVerifier> {
  if (config.verifier === undefined)
    throw new ConfigError("VERIFIER_PRIVATE_KEYS", "is required to run a verifier");
  const logger = opts.logger ?? pino({ level: config.logLevel, name: "gradnet-verifier" });
  const publicClient = createPublicClient({
    transport: http(config.rpcUrl, { retryCount: 2, timeout: 15_000 }),
  }) as PublicClient;
  let chainId: number;
  try {
    chainId = await publicClient.getChainId();
  } catch (err) {
    throw new RpcUnavailableError(config.rpcUrl, { cause: err });
  }
  const addresses = resolveAddresses(chainId, config.deploymentsDir);
  let deployedAtBlock: number | undefined;
  try {
    deployedAtBlock = readDeployment(chainId, config.deploymentsDir).deployedAtBlock;
  } catch {
    deployedAtBlock = undefined;
  }
  const chain = resolveChainSettings(config, chainId, deployedAtBlock);
  const reader = viemHubReader(publicClient, addresses.inferenceHub, BigInt(deployedAtBlock ?? 0));
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3, enableOfflineQueue: true });
  redis.on("error", (err: Error) => logger.warn({ err: err.message }, "redis connection error"));
  const metrics = createMetrics();
  const verifier = buildVerifier({
    config,
    verifierConfig: config.verifier,
    publicClient,
    chain,
    addresses,
    reader,
    deployedAtBlock,
    redis,
    logger: logger.child({ component: "verifier" }),
    metrics,
  });
  verifier.start();
  logger.info(
    { chainId, verifiers: verifier.stats().verifiers, verifyShare: config.verifier.share },
    `gradnet verifier on chain ${chainId}`,
  );
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await verifier.stop();
      await redis.quit().catch(() => redis.disconnect());
    })());
  return { verifier, metrics, logger, chain, addresses, stop };
}

if (require.main === module) {
  runAsProcess(
    parseConfig,
    (config) => startRelayer(config),
    (relayer) => relayer.stop(),
  );
}
