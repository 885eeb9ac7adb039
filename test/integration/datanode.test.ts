/**
 * Data nodes against a real `hardhat node`: three staked DATA nodes poll three local HTTP price
 * sources (one of them 50% off) and report ETH/USD. Every round is answered with the median, the
 * deviating reporter and a listed reporter that never reports are counted on chain, a restarted
 * node does not report twice, and the loop closes: the feed's last 8 values go to the feed-trend
 * model (run with onnxruntime), whose answer a FeedTrendConsumer records on chain.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import pino from "pino";
import {
  createWalletClient,
  http as httpTransport,
  parseEventLogs,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { SESSION_OPTIONS, localSession, prepareInputs, runOne } from "../../inference-worker/inference";
import manifest from "../../models/manifest.json";
import { referenceTrend } from "../../models/trend";
import {
  FIXED_ADDRESSES,
  Roles,
  dataFeedsAbi,
  decodeTensors,
  decodeWire,
  feedIdOf,
  feedTrendConsumerAbi,
  inferenceHubAbi,
  modelRegistryAbi,
  nodeRegistryAbi,
  type Request,
} from "../../sdk";
import { parseDataNodeConfig, startDataNode, type DataNode } from "../../node";
import { MNEMONIC, ROOT, startTestChain, waitUntil, type TestChain } from "./harness";

const ETH_USD = feedIdOf("ETH/USD");
const DECIMALS = 8;
const ACCOUNTS = {
  owner: 0,
  modelOwner: 1,
  inferenceNode: 2,
  user: 3,
  data: [10, 11, 12],
  silent: 13,
} as const;
const INTERVAL_MS = 200;
/** USD per second the sources' price rises by, so that the trend model sees a clear rise. */
const DRIFT_PER_SECOND = 20;

const account = (i: number) => mnemonicToAccount(MNEMONIC, { addressIndex: i });
const keyOf = (i: number): Hex => {
  const key = account(i).getHdKey().privateKey!;
  return `0x${Buffer.from(key).toString("hex")}`;
};

/** A JSON price source on a free port; `shape` wraps the price as a given API would. */
async function priceSource(
  shape: (price: number) => unknown,
): Promise<{ url: string; close(): void; hits: () => number }> {
  const t0 = Date.now();
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits += 1;
    const price = 2000 + ((Date.now() - t0) / 1000) * DRIFT_PER_SECOND;
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify(shape(Number(price.toFixed(4)))));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
    hits: () => hits,
  };
}

function median(values: readonly bigint[]): bigint {
  const s = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2n;
}

describe("data nodes on a Hardhat node", { timeout: 180_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-datanode-it-"));
  const logger = pino({ level: process.env.LOG_LEVEL ?? "silent" });
  let chain: TestChain | undefined;
  let publicClient: PublicClient;
  let sources: Awaited<ReturnType<typeof priceSource>>[] = [];
  const nodes: DataNode[] = [];
  const [honestA, honestB, off] = ACCOUNTS.data.map((i) => account(i).address) as [Address, Address, Address];
  const silent = account(ACCOUNTS.silent).address;

  const wallet = (i: number) =>
    createWalletClient({ chain: hardhat, transport: httpTransport(chain!.rpcUrl), account: account(i) });
  const mined = async (hash: Hex) => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    return receipt;
  };
  const read = <T>(functionName: string, args: readonly unknown[]) =>
    publicClient.readContract({
      address: FIXED_ADDRESSES.dataFeeds,
      abi: dataFeedsAbi,
      functionName: functionName as never,
      args: args as never,
    }) as Promise<T>;
  const latestRoundId = async () =>
    (await read<readonly [bigint, bigint, number, bigint]>("latestRound", [ETH_USD]))[0];
  const stats = (reporter: Address) =>
    read<{ listed: boolean; reports: number; late: number; deviations: number; missed: number }>(
      "reporterStats",
      [ETH_USD, reporter],
    );
  const events = <N extends "ReportSubmitted" | "RoundAnswered" | "ReportDeviated" | "ReportMissed">(
    eventName: N,
  ) =>
    publicClient.getContractEvents({
      address: FIXED_ADDRESSES.dataFeeds,
      abi: dataFeedsAbi,
      eventName,
      fromBlock: 0n,
      toBlock: "latest",
      strict: true,
    });

  const startNode = (index: number, source: { url: string }, jsonPath: string) =>
    startDataNode(
      parseDataNodeConfig({
        RPC_URL: chain!.rpcUrl,
        DEPLOYMENTS_DIR: chain!.deploymentsDir,
        DATA_PRIVATE_KEY: keyOf(index),
        DATA_FEEDS: JSON.stringify([
          { symbol: "ETH/USD", url: source.url, jsonPath, decimals: DECIMALS, intervalMs: INTERVAL_MS },
        ]),
        DATA_METRICS_PORT: "0",
      }),
      { logger: logger.child({ node: index }) },
    );

  before(async () => {
    chain = await startTestChain(tmp);
    publicClient = chain.publicClient;
    sources = await Promise.all([
      priceSource((p) => ({ ethereum: { usd: p } })), // a JSON number
      priceSource((p) => ({ data: { price: (p + 0.1).toFixed(4) } })), // a string, 10 cents above
      priceSource((p) => ({ result: [{ close: (p * 1.5).toFixed(4) }] })), // 50% off
    ]);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.close().catch(() => undefined)));
    for (const s of sources) s.close();
    await chain?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("governance creates ETH/USD with four reporters; three stake as DATA nodes", async () => {
    const minStake = await publicClient.readContract({
      address: FIXED_ADDRESSES.nodeRegistry,
      abi: nodeRegistryAbi,
      functionName: "minStake",
      args: [Roles.DATA],
    });
    for (const i of ACCOUNTS.data) {
      await mined(
        await wallet(i).writeContract({
          address: FIXED_ADDRESSES.nodeRegistry,
          abi: nodeRegistryAbi,
          functionName: "register",
          args: [Roles.DATA],
          value: minStake,
        }),
      );
    }
    await mined(
      await wallet(ACCOUNTS.owner).writeContract({
        address: FIXED_ADDRESSES.dataFeeds,
        abi: dataFeedsAbi,
        functionName: "createFeed",
        args: [ETH_USD, "ETH / USD", DECIMALS, 3, 3600, 500, [honestA, honestB, off, silent]],
      }),
    );
  });

  test("three data nodes report every round; the median ignores the one 50% off", async () => {
    nodes.push(
      await startNode(ACCOUNTS.data[0], sources[0]!, "ethereum.usd"),
      await startNode(ACCOUNTS.data[1], sources[1]!, "data.price"),
      await startNode(ACCOUNTS.data[2], sources[2]!, "result[0].close"),
    );
    await waitUntil(
      "8 answered rounds",
      async () => ((await latestRoundId()) >= 8n ? true : undefined),
      60_000,
    );

    const reports = await events("ReportSubmitted");
    const answered = await events("RoundAnswered");
    assert.ok(answered.length >= 8);
    for (const a of answered) {
      const inRound = reports.filter((r) => r.args.roundId === a.args.roundId && !r.args.late);
      assert.equal(inRound.length, 3, `round ${a.args.roundId} has 3 reports`);
      assert.equal(a.args.value, median(inRound.map((r) => r.args.value)));
      const valueOf = (who: Address) => inRound.find((r) => r.args.reporter === who)!.args.value;
      // The median is an honest value: within a few cents of both honest reports, far from the off one.
      const honest = [valueOf(honestA), valueOf(honestB)];
      assert.ok(
        honest.includes(a.args.value),
        `round ${a.args.roundId}: ${a.args.value} is an honest report`,
      );
      assert.ok(valueOf(off) > (a.args.value * 14n) / 10n);
    }
    // The latest value reads back through the contract, fresh.
    const value = await read<bigint>("latestValue", [ETH_USD]);
    assert.equal(value, answered.find((a) => a.args.roundId === answered.at(-1)!.args.roundId)!.args.value);
  });

  test("the deviating reporter and the silent one are visible on chain", async () => {
    const rounds = await latestRoundId();
    const deviated = await events("ReportDeviated");
    assert.ok(deviated.length >= 8);
    assert.ok(deviated.every((d) => d.args.reporter === off));
    // 50% off, give or take the price's drift between the reporters' fetches.
    assert.ok(deviated.every((d) => d.args.deviationBps >= 4500n && d.args.deviationBps <= 5500n));
    const offStats = await stats(off);
    assert.equal(offStats.deviations, deviated.length);
    assert.ok(offStats.deviations >= 8);
    for (const who of [honestA, honestB]) {
      const s = await stats(who);
      assert.equal(s.deviations, 0);
      assert.equal(s.missed, 0);
    }
    // The silent reporter is counted as missed for every closed round (all but the latest).
    const missed = await events("ReportMissed");
    assert.ok(missed.every((m) => m.args.reporter === silent));
    const silentStats = await stats(silent);
    assert.ok(silentStats.missed >= Number(rounds) - 1, `${silentStats.missed} missed of ${rounds}`);
    assert.equal(silentStats.reports, 0);
  });

  test("metrics and health say what each node did", async () => {
    const node = nodes[0]!;
    const body = await (await fetch(`${node.metricsUrl}/metrics`)).text();
    const m = /gradnet_datanode_reports_total\{feed="ETH\/USD",kind="open"\} (\d+)/.exec(body);
    assert.ok(m && Number(m[1]) >= 8, body.slice(0, 2000));
    assert.match(body, /gradnet_datanode_fetches_total\{feed="ETH\/USD",outcome="ok"\} \d+/);
    const health = (await (await fetch(`${node.metricsUrl}/health`)).json()) as {
      ok: boolean;
      reporter: string;
    };
    assert.deepEqual([health.ok, health.reporter], [true, honestA]);
    assert.ok(sources.every((s) => s.hits() >= 8));
  });

  test("a restarted node resumes without reporting a round twice", async () => {
    const first = nodes.shift()!;
    await first.close();
    const before = await latestRoundId();
    nodes.unshift(await startNode(ACCOUNTS.data[0], sources[0]!, "ethereum.usd"));
    await waitUntil(
      "3 more rounds",
      async () => ((await latestRoundId()) >= before + 3n ? true : undefined),
      60_000,
    );
    const mine = (await events("ReportSubmitted")).filter((r) => r.args.reporter === honestA);
    const rounds = mine.map((r) => r.args.roundId);
    assert.equal(new Set(rounds).size, rounds.length, "one report per round");
    assert.equal((await stats(honestA)).reports, mine.length);
  });

  test("the loop closes: a dApp asks the trend model about the feed's last 8 values", async () => {
    // Stop reporting, so that the window is fixed while the request is answered.
    await Promise.all(nodes.map((n) => n.close()));
    const model = manifest.models.find((m) => m.name === "feed-trend")!;
    const modelId = model.sha256 as Hex;
    const fee = BigInt(model.fee);
    const shape = (s: { name: string; dtype: number; shape: number[] }) => ({
      ...s,
      shape: s.shape.map(BigInt),
    });
    await mined(
      await wallet(ACCOUNTS.modelOwner).writeContract({
        address: FIXED_ADDRESSES.modelRegistry,
        abi: modelRegistryAbi,
        functionName: "registerModel",
        args: [
          modelId,
          "http://127.0.0.1:1/models/feed-trend",
          { inputs: model.schema.inputs.map(shape), outputs: model.schema.outputs.map(shape) },
          model.decimals,
          fee,
          model.ownerShareBps,
        ],
      }),
    );
    await mined(
      await wallet(ACCOUNTS.inferenceNode).writeContract({
        address: FIXED_ADDRESSES.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "register",
        args: [Roles.INFERENCE],
        value: 10n ** 18n,
      }),
    );
    const artifact = JSON.parse(
      fs.readFileSync(
        path.join(ROOT, "artifacts/contracts/consumer/FeedTrendConsumer.sol/FeedTrendConsumer.json"),
        "utf8",
      ),
    ) as { bytecode: Hex };
    const deployTx = await wallet(ACCOUNTS.user).deployContract({
      abi: feedTrendConsumerAbi,
      bytecode: artifact.bytecode,
      args: [FIXED_ADDRESSES.inferenceHub, FIXED_ADDRESSES.dataFeeds, ETH_USD, modelId],
    });
    const app = (await mined(deployTx)).contractAddress!;

    const receipt = await mined(
      await wallet(ACCOUNTS.user).writeContract({
        address: app,
        abi: feedTrendConsumerAbi,
        functionName: "requestTrend",
        value: fee,
      }),
    );
    const [requested] = parseEventLogs({
      abi: inferenceHubAbi,
      eventName: "InferenceRequested",
      logs: receipt.logs,
    });
    const request = requested!.args.request as Request;
    const window = await read<readonly bigint[]>("recentValues", [ETH_USD, 8n]);
    const [prices] = decodeWire(requested!.args.input);
    assert.deepEqual(prices!.values, window, "the input is the feed's last 8 values");

    // The inference node's part, done here: onnxruntime on the exact input, canonical output.
    const session = await ort.InferenceSession.create(path.join(ROOT, "models", model.file), SESSION_OPTIONS);
    const spec = {
      modelId,
      decimals: model.decimals,
      inputs: model.schema.inputs,
      outputs: model.schema.outputs,
    };
    const { output, outputHash } = await runOne(
      localSession(session),
      spec,
      prepareInputs(spec, decodeWire(requested!.args.input)),
    );
    await session.release();
    const trend = decodeTensors(output).find((t) => t.name === "trend")!.data[0] as number;
    const expected = referenceTrend(window.map((v) => Number(v) / 10 ** DECIMALS)).trend;
    assert.ok(Math.abs(trend - expected) < 1e-2 * Math.max(1, Math.abs(expected)), `${trend} vs ${expected}`);

    await mined(
      await wallet(ACCOUNTS.inferenceNode).writeContract({
        address: FIXED_ADDRESSES.inferenceHub,
        abi: inferenceHubAbi,
        functionName: "fulfill",
        args: [request, 0, output, outputHash],
      }),
    );
    const [requestId, reading] = await publicClient.readContract({
      address: app,
      abi: feedTrendConsumerAbi,
      functionName: "latestTrend",
    });
    assert.equal(requestId, request.requestId);
    assert.equal(reading.answered, true);
    assert.equal(reading.roundId, await latestRoundId());
    assert.equal(reading.direction, 0, "the sources rise, so the trend is up");
    assert.equal(reading.trend, decodeWire(output).find((t) => t.name === "trend")!.values[0]);
    assert.equal(reading.outputHash, outputHash);
  });
});
