/**
 * The devnet's data feeds: a local ETH/USD price source (a deterministic random walk served as
 * JSON over HTTP), the ETH/USD feed on chain, three staked data nodes reporting it in-process, and
 * the FeedTrendConsumer example dApp that asks the feed-trend model about the feed's last values.
 * `startDevnet` (scripts/devnet.ts) calls `startDevnetFeeds` once the system and models are up.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import pino from "pino";
import { createWalletClient, http as httpTransport, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { mulberry32 } from "../models/onnx";
import { startDataNode, type DataNode } from "../node";
import {
  FIXED_ADDRESSES,
  Roles,
  dataFeedsAbi,
  feedIdOf,
  feedTrendConsumerAbi,
  nodeRegistryAbi,
} from "../sdk";

const ROOT = path.resolve(__dirname, "..");

export const DEVNET_FEED = {
  symbol: "ETH/USD",
  description: "ETH / USD (devnet random walk)",
  decimals: 8,
  quorum: 2,
  maxStaleness: 60,
  maxDeviationBps: 100,
  intervalMs: 2000,
} as const;

export interface DevnetFeedsInfo {
  feeds: { symbol: string; feedId: Hex; decimals: number; quorum: number; source: string }[];
  dataNodes: { address: Address; metricsUrl: string | undefined }[];
  trendConsumer: Address;
}

export interface DevnetFeedsOptions {
  rpcUrl: string;
  publicClient: PublicClient;
  deploymentsDir: string;
  /** Governance of the system contracts: creates the feed, deploys the example dApp. */
  ownerKey: Hex;
  /** One data node per key; each is staked with the DATA role and listed as a reporter. */
  dataNodeKeys: readonly Hex[];
  /** The feed-trend model's id (registered by the devnet from models/manifest.json). */
  trendModelId: Hex;
  logsDir: string;
  verbose?: boolean;
  log: (line: string) => void;
}

/**
 * A price that moves every second: a seeded random walk with a slow swing, so that the trend
 * model sees rises and falls. Pure in (seed, step).
 */
export function randomWalk(seed = 2024, start = 2500): (step: number) => number {
  const rand = mulberry32(seed);
  const prices = [start];
  return (step) => {
    while (prices.length <= step) {
      const k = prices.length;
      const swing = 0.0008 * Math.sin((2 * Math.PI * k) / 240);
      const prev = prices[k - 1]!;
      prices.push(Math.round(prev * (1 + swing + 0.0015 * (2 * rand() - 1)) * 100) / 100);
    }
    return prices[step]!;
  };
}

/** Serve `{"ethereum":{"usd":price}}` on a free port; the price steps once a second. */
async function startPriceSource(): Promise<{ url: string; close(): Promise<void> }> {
  const walk = randomWalk();
  const t0 = Date.now();
  const server = http.createServer((req, res) => {
    if (req.url !== "/eth-usd") return void res.writeHead(404).end();
    const price = walk(Math.floor((Date.now() - t0) / 1000));
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ ethereum: { usd: price } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/eth-usd`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function startDevnetFeeds(
  opts: DevnetFeedsOptions,
): Promise<{ info: DevnetFeedsInfo; stop(): Promise<void> }> {
  const { publicClient, log } = opts;
  const closers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  };
  try {
    const wallet = (key: Hex) =>
      createWalletClient({
        chain: hardhat,
        transport: httpTransport(opts.rpcUrl),
        account: privateKeyToAccount(key),
      });
    const send = async (p: Promise<Hex>) => {
      const receipt = await publicClient.waitForTransactionReceipt({ hash: await p });
      if (receipt.status !== "success") throw new Error(`transaction ${receipt.transactionHash} reverted`);
      return receipt;
    };

    const source = await startPriceSource();
    closers.push(source.close);
    log(`serving an ETH/USD price source at ${source.url}`);

    const minStake = await publicClient.readContract({
      address: FIXED_ADDRESSES.nodeRegistry,
      abi: nodeRegistryAbi,
      functionName: "minStake",
      args: [Roles.DATA],
    });
    const reporters = opts.dataNodeKeys.map((k) => privateKeyToAccount(k).address);
    for (const key of opts.dataNodeKeys) {
      await send(
        wallet(key).writeContract({
          address: FIXED_ADDRESSES.nodeRegistry,
          abi: nodeRegistryAbi,
          functionName: "register",
          args: [Roles.DATA],
          value: minStake,
        }),
      );
    }
    const feedId = feedIdOf(DEVNET_FEED.symbol);
    const owner = wallet(opts.ownerKey);
    await send(
      owner.writeContract({
        address: FIXED_ADDRESSES.dataFeeds,
        abi: dataFeedsAbi,
        functionName: "createFeed",
        args: [
          feedId,
          DEVNET_FEED.description,
          DEVNET_FEED.decimals,
          DEVNET_FEED.quorum,
          DEVNET_FEED.maxStaleness,
          DEVNET_FEED.maxDeviationBps,
          reporters,
        ],
      }),
    );

    const artifact = JSON.parse(
      fs.readFileSync(
        path.join(ROOT, "artifacts/contracts/consumer/FeedTrendConsumer.sol/FeedTrendConsumer.json"),
        "utf8",
      ),
    ) as { bytecode: Hex };
    const deployed = await send(
      owner.deployContract({
        abi: feedTrendConsumerAbi,
        bytecode: artifact.bytecode,
        args: [FIXED_ADDRESSES.inferenceHub, FIXED_ADDRESSES.dataFeeds, feedId, opts.trendModelId],
      }),
    );

    const dataNodes: DevnetFeedsInfo["dataNodes"] = [];
    for (const [k, key] of opts.dataNodeKeys.entries()) {
      const name = `datanode-${k + 1}`;
      const logger = opts.verbose
        ? pino({ name, level: "info" })
        : pino(
            { name, level: "info" },
            pino.destination({ dest: path.join(opts.logsDir, `${name}.log`), sync: true }),
          );
      const node: DataNode = await startDataNode(
        {
          rpcUrl: opts.rpcUrl,
          deploymentsDir: opts.deploymentsDir,
          privateKey: key,
          feeds: [
            {
              name: DEVNET_FEED.symbol,
              feedId,
              url: source.url,
              jsonPath: "ethereum.usd",
              decimals: DEVNET_FEED.decimals,
              intervalMs: DEVNET_FEED.intervalMs,
              timeoutMs: undefined,
              lateWindowMs: DEVNET_FEED.intervalMs,
              headers: {},
            },
          ],
          fetchTimeoutMs: 5000,
          maxBackoffMs: 30_000,
          metricsHost: "127.0.0.1",
          metricsPort: 0,
          logLevel: "info",
        },
        { logger },
      );
      closers.push(() => node.close());
      dataNodes.push({ address: node.address, metricsUrl: node.metricsUrl });
    }
    log(`data nodes ${dataNodes.map((d) => d.address).join(", ")} report ${DEVNET_FEED.symbol}`);

    return {
      info: {
        feeds: [
          {
            symbol: DEVNET_FEED.symbol,
            feedId,
            decimals: DEVNET_FEED.decimals,
            quorum: DEVNET_FEED.quorum,
            source: source.url,
          },
        ],
        dataNodes,
        trendConsumer: deployed.contractAddress!,
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The summary lines the devnet prints for its feeds. */
export function feedsSummary(info: DevnetFeedsInfo): string[] {
  return [
    "  data feeds",
    ...info.feeds.map(
      (f) =>
        `    ${f.symbol.padEnd(14)} ${f.feedId}  quorum ${f.quorum}, ${f.decimals} decimals, source ${f.source}`,
    ),
    "",
    "  data nodes",
    ...info.dataNodes.map(
      (d, i) =>
        `    datanode-${i + 1}     ${d.address}` + (d.metricsUrl ? `  metrics ${d.metricsUrl}/metrics` : ""),
    ),
    "",
    `  feed dApp     FeedTrendConsumer at ${info.trendConsumer} (feed-trend model over the last 8 ETH/USD values)`,
  ];
}
