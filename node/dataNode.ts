/**
 * The data node: polls each configured HTTP JSON source on its schedule and reports the value to
 * the DataFeeds contract, once per round.
 *
 *   DATA_PRIVATE_KEY=0x... DATA_FEEDS='[{"symbol":"ETH/USD","url":"https://...","jsonPath":"data.price"}]' \
 *     npx tsx node/dataNode.ts         # configured from the environment (docs/operator.md)
 *
 * Each feed runs its own loop: read the reporter's standing in the latest and the open round from
 * the chain (one block, so the reads agree), pick the round (pure `chooseRound`), fetch and scale
 * the value (pure `extractFeedValue`), simulate and send `report`. Nothing is kept between runs:
 * the chain says what was reported, so a restarted node resumes without reporting twice, and a
 * `DataFeeds__AlreadyReported` revert (an earlier transaction landed) counts as done. A failed
 * fetch or transaction is retried with exponential backoff. `startDataNode(config)` runs the same
 * in-process, for tests and the devnet.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import {
  createPublicClient,
  createWalletClient,
  http as httpTransport,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { nonceManager, privateKeyToAccount } from "viem/accounts";
import {
  GradnetError,
  Roles,
  dataFeedsAbi,
  decodeRevert,
  nodeRegistryAbi,
  resolveAddresses,
  fromFixedPoint,
} from "../sdk";
import { parseDataNodeConfig, type DataNodeConfig } from "./dataConfig";
import {
  FeedValueError,
  chooseRound,
  extractFeedValue,
  type FeedSource,
  type ReporterView,
  type RoundChoice,
} from "./feedSource";
import { RpcUnavailableError } from "./main";
import { backoffDelay } from "./watcher";
import { BackgroundLoop } from "./loop";
import { runAsProcess } from "./service";

// ------------------------------------------------------------------------------- errors

/** A source could not be fetched: network error, timeout or an HTTP error status. Retried. */
export class FeedFetchError extends GradnetError {
  constructor(
    readonly feed: string,
    readonly url: string,
    readonly reason: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super("FEED_FETCH", `feed ${feed}: fetching ${url}: ${reason}`, options);
  }
}

/** A configured feed that the chain does not have, or has with other decimals. */
export class FeedMismatchError extends GradnetError {
  constructor(
    readonly feed: string,
    reason: string,
  ) {
    super("FEED_MISMATCH", `feed ${feed}: ${reason}`);
  }
}

/** The largest answer a source may send. */
export const MAX_SOURCE_BYTES = 1024 * 1024;

/** GET the source and read its value, scaled to `decimals`. Throws FeedFetchError or FeedValueError. */
export async function fetchFeedValue(
  source: FeedSource,
  decimals: number,
  timeoutMs: number,
): Promise<bigint> {
  let res: Response;
  try {
    res = await fetch(source.url, {
      headers: { accept: "application/json", ...source.headers },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (cause) {
    const reason =
      (cause as Error).name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : String(cause);
    throw new FeedFetchError(source.name, source.url, reason, undefined, { cause });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new FeedFetchError(source.name, source.url, `HTTP ${res.status}`, res.status);
  }
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > MAX_SOURCE_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw new FeedFetchError(source.name, source.url, `${declared} bytes, above ${MAX_SOURCE_BYTES}`);
  }
  let body: string;
  try {
    body = await res.text();
  } catch (cause) {
    throw new FeedFetchError(source.name, source.url, `reading the answer: ${String(cause)}`, res.status, {
      cause,
    });
  }
  if (body.length > MAX_SOURCE_BYTES)
    throw new FeedFetchError(source.name, source.url, `${body.length} bytes, above ${MAX_SOURCE_BYTES}`);
  return extractFeedValue(body, source, decimals);
}

// ------------------------------------------------------------------------------- chain

export interface FeedOnChain {
  description: string;
  decimals: number;
  quorum: number;
  reporters: readonly Address[];
}

/** The data node's window on the chain; `viemDataFeedsChain` is the real one. */
export interface DataFeedsChain {
  readonly reporter: Address;
  /** The feed's settings, or undefined when the feed does not exist. */
  feed(feedId: Hex): Promise<FeedOnChain | undefined>;
  /** The reporter's standing in the latest and the open round, read at one block. */
  reporterView(feedId: Hex): Promise<ReporterView>;
  /** Whether the reporter is an active DATA node in the NodeRegistry. */
  isDataNode(): Promise<boolean>;
  /** Simulate, send and wait for `report`; throws (a viem error) on a revert. */
  report(feedId: Hex, roundId: bigint, value: bigint): Promise<Hex>;
}

export function viemDataFeedsChain(opts: {
  publicClient: PublicClient;
  rpcUrl: string;
  chain?: Chain;
  privateKey: Hex;
  dataFeeds: Address;
  nodeRegistry: Address;
}): DataFeedsChain {
  const { publicClient, dataFeeds } = opts;
  const account = privateKeyToAccount(opts.privateKey, { nonceManager });
  const wallet: WalletClient<Transport, Chain | undefined, Account> = createWalletClient({
    account,
    chain: opts.chain,
    transport: httpTransport(opts.rpcUrl, { retryCount: 2, timeout: 30_000 }),
  });
  // One transaction at a time per account, across feeds: nonces stay in order.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  const getRound = (feedId: Hex, roundId: bigint, blockNumber: bigint) =>
    publicClient.readContract({
      address: dataFeeds,
      abi: dataFeedsAbi,
      functionName: "getRound",
      args: [feedId, roundId],
      blockNumber,
    });

  return {
    reporter: account.address,
    async feed(feedId) {
      try {
        const info = await publicClient.readContract({
          address: dataFeeds,
          abi: dataFeedsAbi,
          functionName: "feed",
          args: [feedId],
        });
        return {
          description: info.description,
          decimals: info.decimals,
          quorum: info.params.quorum,
          reporters: info.reporters,
        };
      } catch (err) {
        if (decodeRevert(err)?.name === "DataFeeds__UnknownFeed") return undefined;
        throw err;
      }
    },
    async reporterView(feedId) {
      const block = await publicClient.getBlock({ blockTag: "latest" });
      const blockNumber = block.number;
      const [latestRound, stats] = await Promise.all([
        publicClient.readContract({
          address: dataFeeds,
          abi: dataFeedsAbi,
          functionName: "latestRound",
          args: [feedId],
          blockNumber,
        }),
        publicClient.readContract({
          address: dataFeeds,
          abi: dataFeedsAbi,
          functionName: "reporterStats",
          args: [feedId, account.address],
          blockNumber,
        }),
      ]);
      const latestRoundId = latestRound[0];
      const [open, latest] = await Promise.all([
        getRound(feedId, latestRoundId + 1n, blockNumber),
        latestRoundId > 0n ? getRound(feedId, latestRoundId, blockNumber) : undefined,
      ]);
      const view = (r: typeof open) => ({
        roundId: r.roundId,
        expected: r.expected,
        reported: r.reported,
        updatedAt: r.updatedAt,
      });
      return {
        latestRoundId,
        latest: latest === undefined ? undefined : view(latest),
        open: view(open),
        listed: stats.listed,
        slot: stats.slot,
        nowSeconds: block.timestamp,
      };
    },
    isDataNode: () =>
      publicClient.readContract({
        address: opts.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "isActive",
        args: [account.address, Roles.DATA],
      }),
    report: (feedId, roundId, value) =>
      serially(async () => {
        const { request } = await publicClient.simulateContract({
          account,
          address: dataFeeds,
          abi: dataFeedsAbi,
          functionName: "report",
          args: [feedId, roundId, value],
        });
        const hash = await wallet.writeContract(request as Parameters<typeof wallet.writeContract>[0]);
        const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
        if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
        return hash;
      }),
  };
}

// ------------------------------------------------------------------------------ metrics

export interface DataNodeMetrics {
  registry: Registry;
  fetches: Counter<"feed" | "outcome">;
  fetchDuration: Histogram<"feed">;
  reports: Counter<"feed" | "kind">;
  errors: Counter<"feed" | "stage">;
  lastValue: Gauge<"feed">;
  latestRound: Gauge<"feed">;
  lastReportTime: Gauge<"feed">;
}

export function createDataNodeMetrics(opts: { defaultMetrics?: boolean } = {}): DataNodeMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    fetches: new Counter({
      name: "gradnet_datanode_fetches_total",
      help: "Source fetches, by outcome: ok, fetch_error (network, timeout, HTTP status), value_error (no usable value)",
      labelNames: ["feed", "outcome"] as const,
      registers,
    }),
    fetchDuration: new Histogram({
      name: "gradnet_datanode_fetch_duration_seconds",
      help: "Time to fetch and read a source",
      labelNames: ["feed"] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    reports: new Counter({
      name: "gradnet_datanode_reports_total",
      help: "Reports that landed, by kind: open (counted in the median), late (after the round was answered), already (an earlier transaction had landed)",
      labelNames: ["feed", "kind"] as const,
      registers,
    }),
    errors: new Counter({
      name: "gradnet_datanode_errors_total",
      help: "Failed steps, by stage: fetch, value, chain (each is retried with backoff)",
      labelNames: ["feed", "stage"] as const,
      registers,
    }),
    lastValue: new Gauge({
      name: "gradnet_datanode_last_value",
      help: "The last value reported, in the feed's units",
      labelNames: ["feed"] as const,
      registers,
    }),
    latestRound: new Gauge({
      name: "gradnet_datanode_latest_round",
      help: "The feed's latest answered round, as last read",
      labelNames: ["feed"] as const,
      registers,
    }),
    lastReportTime: new Gauge({
      name: "gradnet_datanode_last_report_timestamp_seconds",
      help: "Unix time of the last report that landed",
      labelNames: ["feed"] as const,
      registers,
    }),
  };
}

// --------------------------------------------------------------------------- one feed

export interface FeedReporterStats {
  feed: string;
  running: boolean;
  open: number;
  late: number;
  already: number;
  waits: number;
  errors: number;
  consecutiveFailures: number;
  lastRoundId: bigint | undefined;
  lastValue: bigint | undefined;
  lastError: string | undefined;
}

export interface FeedReporterOptions {
  source: FeedSource;
  /** The feed's decimals on chain. */
  decimals: number;
  chain: DataFeedsChain;
  fetchTimeoutMs: number;
  maxBackoffMs: number;
  logger: Logger;
  metrics?: DataNodeMetrics;
  /** Fetch and scale the value; `fetchFeedValue` by default. */
  fetchValue?: (source: FeedSource, decimals: number, timeoutMs: number) => Promise<bigint>;
}

/** The revert names that mean "the round moved under us": read again and retry once. */
const ROUND_MOVED = new Set(["DataFeeds__WrongRound", "DataFeeds__NotInRound"]);

/** Reports one feed on its schedule until stopped. */
export class FeedReporter extends BackgroundLoop {
  private readonly counts = { open: 0, late: 0, already: 0, waits: 0, errors: 0 };
  private consecutiveFailures = 0;
  private lastRoundId: bigint | undefined;
  private lastValue: bigint | undefined;
  private lastError: string | undefined;
  private lastWait: string | undefined;

  constructor(private readonly opts: FeedReporterOptions) {
    super();
  }

  stats(): FeedReporterStats {
    return {
      feed: this.opts.source.name,
      running: this.running,
      ...this.counts,
      consecutiveFailures: this.consecutiveFailures,
      lastRoundId: this.lastRoundId,
      lastValue: this.lastValue,
      lastError: this.lastError,
    };
  }

  /**
   * One step: pick a round, fetch, report. Returns what it did; throws on a fetch, value or
   * chain failure (the loop backs off and tries again).
   */
  async tick(): Promise<RoundChoice["kind"] | "already"> {
    const { opts } = this;
    const { source, chain } = opts;
    const feed = source.name;
    let value: bigint | undefined;
    for (let attempt = 1; ; attempt++) {
      const view = await chain.reporterView(source.feedId);
      opts.metrics?.latestRound.set({ feed }, Number(view.latestRoundId));
      const choice = chooseRound(view, BigInt(Math.ceil(source.lateWindowMs / 1000)));
      if (choice.kind === "wait") {
        this.counts.waits += 1;
        if (choice.reason !== this.lastWait) {
          const log = choice.reason === "not-listed" ? opts.logger.warn : opts.logger.debug;
          log.call(
            opts.logger,
            { feed, reason: choice.reason, latestRoundId: view.latestRoundId.toString() },
            choice.reason === "not-listed"
              ? `data node ${chain.reporter} is not a listed reporter of ${feed}; waiting for governance to add it`
              : "nothing to report this round; waiting",
          );
        }
        this.lastWait = choice.reason;
        return "wait";
      }
      this.lastWait = undefined;
      value ??= await this.fetch();
      try {
        const tx = await chain.report(source.feedId, choice.roundId, value);
        this.counts[choice.kind] += 1;
        this.landed(choice.kind, choice.roundId, value);
        opts.logger.info(
          {
            feed,
            roundId: choice.roundId.toString(),
            value: value.toString(),
            late: choice.kind === "late",
            tx,
          },
          `reported ${feed} = ${fromFixedPoint(value, opts.decimals)} in round ${choice.roundId}${choice.kind === "late" ? " (late)" : ""}`,
        );
        return choice.kind;
      } catch (err) {
        const name = decodeRevert(err)?.name;
        if (name === "DataFeeds__AlreadyReported") {
          this.counts.already += 1;
          this.landed("already", choice.roundId, value);
          opts.logger.info(
            { feed, roundId: choice.roundId.toString() },
            "already reported in this round (an earlier transaction landed)",
          );
          return "already";
        }
        if (name !== undefined && ROUND_MOVED.has(name) && attempt === 1) {
          opts.logger.debug(
            { feed, roundId: choice.roundId.toString(), revert: name },
            "the round moved; reading again",
          );
          continue;
        }
        opts.metrics?.errors.inc({ feed, stage: "chain" });
        throw err;
      }
    }
  }

  private landed(kind: "open" | "late" | "already", roundId: bigint, value: bigint): void {
    const { metrics, source, decimals } = this.opts;
    this.lastRoundId = roundId;
    this.lastValue = value;
    metrics?.reports.inc({ feed: source.name, kind });
    metrics?.lastValue.set({ feed: source.name }, fromFixedPoint(value, decimals));
    metrics?.lastReportTime.set({ feed: source.name }, Date.now() / 1000);
  }

  private async fetch(): Promise<bigint> {
    const { opts } = this;
    const feed = opts.source.name;
    const end = opts.metrics?.fetchDuration.startTimer({ feed });
    try {
      const value = await (opts.fetchValue ?? fetchFeedValue)(
        opts.source,
        opts.decimals,
        opts.source.timeoutMs ?? opts.fetchTimeoutMs,
      );
      opts.metrics?.fetches.inc({ feed, outcome: "ok" });
      return value;
    } catch (err) {
      const valueError = err instanceof FeedValueError;
      opts.metrics?.fetches.inc({ feed, outcome: valueError ? "value_error" : "fetch_error" });
      opts.metrics?.errors.inc({ feed, stage: valueError ? "value" : "fetch" });
      throw err;
    } finally {
      end?.();
    }
  }

  protected async run(): Promise<void> {
    const { opts } = this;
    const { intervalMs } = opts.source;
    while (!this.stopping) {
      let delay = intervalMs;
      try {
        await this.tick();
        if (this.consecutiveFailures > 0) opts.logger.info({ feed: opts.source.name }, "data node recovered");
        this.consecutiveFailures = 0;
        this.lastError = undefined;
      } catch (err) {
        this.consecutiveFailures += 1;
        this.counts.errors += 1;
        this.lastError = errorMessage(err);
        delay = backoffDelay(this.consecutiveFailures, intervalMs, Math.max(intervalMs, opts.maxBackoffMs));
        opts.logger.error(
          { feed: opts.source.name, err: this.lastError, retryInMs: delay },
          err instanceof GradnetError ? this.lastError : "report failed; retrying",
        );
      }
      if (!this.stopping) await this.sleep(delay);
    }
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return (err as Error & { shortMessage?: string }).shortMessage ?? err.message;
  return String(err);
}

// ------------------------------------------------------------------------------ process

export interface DataNode {
  /** The reporter address (from DATA_PRIVATE_KEY). */
  address: Address;
  chainId: number;
  dataFeeds: Address;
  feeds: readonly FeedSource[];
  reporters: readonly FeedReporter[];
  metrics: DataNodeMetrics;
  logger: Logger;
  /** Where /metrics and /health are served; undefined without DATA_METRICS_PORT. */
  metricsUrl: string | undefined;
  stats(): FeedReporterStats[];
  /** Stop every feed loop (after its current step) and the metrics server. */
  close(): Promise<void>;
}

export interface StartDataNodeOptions {
  logger?: Logger;
  /** Use this chain adapter instead of viem's (tests). */
  chain?: DataFeedsChain;
  metrics?: DataNodeMetrics;
}

/**
 * Start a data node: check every configured feed against the chain (it must exist, with the same
 * decimals when the config gives them), warn when the key is not a listed reporter or not an
 * active DATA node (it keeps polling and reports once it is), then start one loop per feed.
 */
export async function startDataNode(
  config: DataNodeConfig,
  opts: StartDataNodeOptions = {},
): Promise<DataNode> {
  const logger = opts.logger ?? pino({ level: config.logLevel, name: "gradnet-datanode" });
  const publicClient = createPublicClient({
    transport: httpTransport(config.rpcUrl, { retryCount: 2, timeout: 15_000 }),
  }) as PublicClient;
  let chainId: number;
  try {
    chainId = await publicClient.getChainId();
  } catch (err) {
    throw new RpcUnavailableError(config.rpcUrl, { cause: err });
  }
  const addresses = resolveAddresses(chainId, config.deploymentsDir);
  const code = await publicClient.getCode({ address: addresses.dataFeeds });
  if (code === undefined || code === "0x") {
    throw new GradnetError(
      "DATA_FEEDS_MISSING",
      `no DataFeeds contract at ${addresses.dataFeeds} on chain ${chainId}; is gradnet deployed there?`,
    );
  }
  const chain =
    opts.chain ??
    viemDataFeedsChain({
      publicClient,
      rpcUrl: config.rpcUrl,
      privateKey: config.privateKey,
      dataFeeds: addresses.dataFeeds,
      nodeRegistry: addresses.nodeRegistry,
    });
  const metrics = opts.metrics ?? createDataNodeMetrics();

  const reporters: FeedReporter[] = [];
  for (const source of config.feeds) {
    const onChain = await chain.feed(source.feedId);
    if (onChain === undefined) {
      throw new FeedMismatchError(
        source.name,
        `no feed ${source.feedId} on chain ${chainId}; governance creates it with DataFeeds.createFeed`,
      );
    }
    if (source.decimals !== undefined && source.decimals !== onChain.decimals) {
      throw new FeedMismatchError(
        source.name,
        `configured with ${source.decimals} decimals, the chain's feed has ${onChain.decimals}`,
      );
    }
    if (!onChain.reporters.some((r) => r.toLowerCase() === chain.reporter.toLowerCase())) {
      logger.warn(
        { feed: source.name, reporter: chain.reporter },
        `${chain.reporter} is not a listed reporter of ${source.name}; it will report once governance lists it`,
      );
    }
    reporters.push(
      new FeedReporter({
        source,
        decimals: onChain.decimals,
        chain,
        fetchTimeoutMs: config.fetchTimeoutMs,
        maxBackoffMs: config.maxBackoffMs,
        logger: logger.child({ component: "datanode" }),
        metrics,
      }),
    );
  }
  if (!(await chain.isDataNode())) {
    logger.warn(
      { reporter: chain.reporter },
      `${chain.reporter} is not an active DATA node (NodeRegistry.register with role DATA and enough stake); its reports will revert until it is`,
    );
  }

  let server: http.Server | undefined;
  let metricsUrl: string | undefined;
  if (config.metricsPort !== undefined) {
    const srv = http.createServer((req, res) => {
      if (req.url === "/metrics") {
        metrics.registry.metrics().then(
          (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      } else if (req.url === "/health") {
        const feeds = reporters.map((r) => r.stats());
        const ok = feeds.every((f) => f.running);
        res
          .writeHead(ok ? 200 : 503, { "content-type": "application/json" })
          .end(
            JSON.stringify({ ok, reporter: chain.reporter, feeds }, (_k, v) =>
              typeof v === "bigint" ? v.toString() : v,
            ),
          );
      } else {
        res.writeHead(404).end();
      }
    });
    server = srv;
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(config.metricsPort, config.metricsHost, () => resolve());
    });
    const { port } = srv.address() as AddressInfo;
    metricsUrl = `http://${config.metricsHost}:${port}`;
  }

  for (const r of reporters) r.start();
  logger.info(
    {
      chainId,
      reporter: chain.reporter,
      dataFeeds: addresses.dataFeeds,
      feeds: config.feeds.map((f) => ({
        feed: f.name,
        feedId: f.feedId,
        url: f.url,
        intervalMs: f.intervalMs,
      })),
      metricsUrl: metricsUrl ?? null,
    },
    `gradnet data node ${chain.reporter} reporting ${config.feeds.map((f) => f.name).join(", ")} on chain ${chainId}`,
  );

  let closed: Promise<void> | undefined;
  return {
    address: chain.reporter,
    chainId,
    dataFeeds: addresses.dataFeeds,
    feeds: config.feeds,
    reporters,
    metrics,
    logger,
    metricsUrl,
    stats: () => reporters.map((r) => r.stats()),
    close: () =>
      (closed ??= (async () => {
        await Promise.all(reporters.map((r) => r.stop()));
        if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
        logger.info({ reporter: chain.reporter }, "data node stopped");
      })()),
  };
}

if (require.main === module) {
  runAsProcess(parseDataNodeConfig, startDataNode, (node) => node.close());
}
