/**
 * `npm run demo:trend`: with `npm run devnet` running, the FeedTrendConsumer dApp reads the last 8
 * values of the ETH/USD feed (reported by the devnet's data nodes), asks the feed-trend model
 * about them, and a worker's answer arrives in its callback: the data feed → model → contract loop.
 */
import fs from "node:fs";
import path from "node:path";
import { createPublicClient, createWalletClient, http, parseEventLogs, type Hex } from "viem";
import { hardhat } from "viem/chains";
import { FIXED_ADDRESSES, dataFeedsAbi, feedTrendConsumerAbi, fromFixedPoint, inferenceHubAbi } from "../sdk";
import { DEVNET_ROLES, devAccount, type DevnetInfo } from "./devnet";

const DIRECTIONS = ["up", "flat", "down"];
const STATUSES = ["Success", "SuccessOffchain", "InvalidInput", "InputUnavailable", "ModelFailed"];

async function main(): Promise<void> {
  const file = path.resolve(__dirname, "..", ".gradnet", "devnet.json");
  if (!fs.existsSync(file))
    throw new Error("no devnet found: start one with `npm run devnet` in another terminal");
  const info = JSON.parse(fs.readFileSync(file, "utf8")) as DevnetInfo;
  const transport = http(info.rpcUrl);
  const publicClient = createPublicClient({ chain: hardhat, transport, pollingInterval: 200 });
  try {
    await publicClient.getChainId();
  } catch {
    throw new Error(
      `the devnet in ${file} does not answer at ${info.rpcUrl}: is \`npm run devnet\` running?`,
    );
  }
  const feed = info.dataFeeds.feeds[0]!;
  const app = info.dataFeeds.trendConsumer;
  const window = Number(
    await publicClient.readContract({ address: app, abi: feedTrendConsumerAbi, functionName: "WINDOW" }),
  );

  // The model needs a full window of answered rounds; a fresh devnet has one after ~16 s.
  let values: readonly bigint[] = [];
  for (const started = Date.now(); ;) {
    values = await publicClient.readContract({
      address: FIXED_ADDRESSES.dataFeeds,
      abi: dataFeedsAbi,
      functionName: "recentValues",
      args: [feed.feedId, BigInt(window)],
    });
    if (values.length >= window) break;
    if (Date.now() - started > 60_000)
      throw new Error(`${feed.symbol} has only ${values.length} answered rounds`);
    console.log(`${feed.symbol} has ${values.length} of ${window} rounds; waiting for the data nodes…`);
    await new Promise((r) => setTimeout(r, 2000));
  }
  console.log(
    `${feed.symbol}, last ${window} rounds: ${values.map((v) => fromFixedPoint(v, feed.decimals)).join(", ")}`,
  );

  const fee = BigInt(info.models.find((m) => m.name === "feed-trend")!.fee);
  const walletClient = createWalletClient({
    chain: hardhat,
    transport,
    account: devAccount(DEVNET_ROLES.user).account,
  });
  const started = Date.now();
  const hash = await walletClient.writeContract({
    address: app,
    abi: feedTrendConsumerAbi,
    functionName: "requestTrend",
    value: fee,
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  const [requested] = parseEventLogs({
    abi: inferenceHubAbi,
    logs: receipt.logs,
    eventName: "InferenceRequested",
  });
  const requestId = requested!.args.requestId;
  console.log(
    `FeedTrendConsumer ${app} sent them to feed-trend as request ${requestId}; waiting for the callback…`,
  );
  for (;;) {
    const r = await publicClient.readContract({
      address: app,
      abi: feedTrendConsumerAbi,
      functionName: "reading",
      args: [requestId],
    });
    if (r.answered) {
      console.log(
        `  answered on chain in ${Date.now() - started} ms: ${DIRECTIONS[r.direction]} ` +
          `(p = ${fromFixedPoint(r.confidence, 6)}), slope ${fromFixedPoint(r.trend, 6).toFixed(2)} bps per round ` +
          `as of round ${r.roundId}, status ${STATUSES[r.status]}, outputHash ${r.outputHash as Hex}`,
      );
      break;
    }
    if (Date.now() - started > 60_000)
      throw new Error("no answer within 60 s; see the worker logs in " + info.logsDir);
    await new Promise((res) => setTimeout(res, 200));
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
