/**
 * The relayer against a real `hardhat node` (JSON-RPC) and a real Redis: requests on chain become
 * BullMQ jobs exactly once, across restarts and a lost checkpoint, and the API reports them.
 *
 * Isolated from a developer's devnet: its own Hardhat port, its own queue name (so its own
 * checkpoint key), its own deployments folder and model store (the repo's deployments/ is untouched).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import pino from "pino";
import { createWalletClient, http, parseEventLogs, sha256, type Hex, type PublicClient } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import {
  FIXED_ADDRESSES,
  GradnetClient,
  encodeTensors,
  inferenceHubAbi,
  modelRegistryAbi,
  type InferenceJob,
  type RequestReceipt,
} from "../../sdk";
import { parseConfig, startRelayer, type Relayer, type RelayerConfig } from "../../node";
import { MNEMONIC, ROOT, startTestChain, waitUntil, type TestChain } from "./harness";

const IRIS = fs.readFileSync(path.join(ROOT, "models", "iris-mlp.onnx"));
const IRIS_SHA256 = `0x${createHash("sha256").update(IRIS).digest("hex")}` as Hex;
const FEE = 10n ** 15n;
describe("relayer on a Hardhat node and Redis", { timeout: 120_000 }, () => {
  const queueName = `gradnet-it-${process.pid}-${Date.now()}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-relayer-it-"));
  let chain: TestChain | undefined;
  let rpcUrl: string;
  let deploymentsDir: string;
  let publicClient: PublicClient;
  let redis: Redis;
  let queue: Queue;
  let config: RelayerConfig;
  let relayer: Relayer | undefined;
  let checkpointKey: string | undefined;
  let deployedAtBlock: number;
  const requests: RequestReceipt[] = [];

  const account = (addressIndex: number) => mnemonicToAccount(MNEMONIC, { addressIndex });
  const wallet = (addressIndex: number) =>
    createWalletClient({ chain: hardhat, transport: http(rpcUrl), account: account(addressIndex) });
  const start = async () => {
    relayer = await startRelayer(config, { logger: pino({ level: "warn" }) });
    checkpointKey = relayer.checkpointKey;
    return relayer;
  };
  const jobs = async () => {
    const all = await queue.getJobs(["waiting", "active", "completed", "failed", "delayed"]);
    return all.sort((a, b) => String(a.id).localeCompare(String(b.id), "en", { numeric: true }));
  };
  const checkpoint = async () => BigInt((await redis.get(checkpointKey!)) ?? "-1");
  const head = () => publicClient.getBlockNumber({ cacheTime: 0 });
  const caughtUp = async () => {
    const h = await head();
    await waitUntil(
      "the relayer to reach the head",
      async () => ((await checkpoint()) >= h ? true : undefined),
      15_000,
    );
  };

  before(async () => {
    chain = await startTestChain(tmp);
    ({ rpcUrl, publicClient, deployedAtBlock, deploymentsDir } = chain);

    const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
    queue = new Queue(queueName, { connection: redis });
    config = parseConfig({
      RPC_URL: rpcUrl,
      REDIS_URL: redisUrl,
      DEPLOYMENTS_DIR: deploymentsDir,
      QUEUE_NAME: queueName,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "0",
      STORE_DIR: path.join(tmp, "store"),
      POLL_INTERVAL_MS: "100",
      LOG_LEVEL: "warn",
    });
  });

  after(async () => {
    await relayer?.stop().catch(() => undefined);
    if (queue !== undefined) {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close().catch(() => undefined);
    }
    if (redis !== undefined) {
      if (checkpointKey !== undefined) await redis.del(checkpointKey).catch(() => undefined);
      await redis.quit().catch(() => redis.disconnect());
    }
    await chain?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("starts from the deployment block and serves uploaded models", async () => {
    const r = await start();
    assert.equal(r.chain.chainId, 31337);
    assert.equal(r.chain.confirmations, 0);
    assert.equal(r.chain.startBlock, BigInt(deployedAtBlock));
    assert.deepEqual(r.addresses, FIXED_ADDRESSES);
    await caughtUp();

    const up = await fetch(`${r.url}/models`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: IRIS,
    });
    assert.equal(up.status, 201);
    const stored = (await up.json()) as { sha256: Hex; uri: string };
    assert.equal(stored.sha256, IRIS_SHA256);
    assert.equal(stored.uri, `${r.url}/models/${IRIS_SHA256}`);
    const down = await fetch(stored.uri);
    assert.equal(down.status, 200);
    assert.deepEqual(Buffer.from(await down.arrayBuffer()), IRIS);

    // register the model with the URI the relayer handed out
    const owner = wallet(2);
    const hash = await owner.writeContract({
      address: FIXED_ADDRESSES.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "registerModel",
      args: [
        IRIS_SHA256,
        stored.uri,
        {
          inputs: [{ name: "input", dtype: 1, shape: [-1n, 4n] }],
          outputs: [
            { name: "probabilities", dtype: 1, shape: [-1n, 3n] },
            { name: "label", dtype: 7, shape: [-1n] },
          ],
        },
        6,
        FEE,
        1000,
      ],
    });
    assert.equal((await publicClient.waitForTransactionReceipt({ hash })).status, "success");
  });

  test("three requests become three jobs with ids 31337-<requestId>", async () => {
    const client = new GradnetClient({ publicClient, walletClient: wallet(5), addresses: FIXED_ADDRESSES });
    for (const row of [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.0, 5.2, 2.3],
      [5.9, 3.0, 4.2, 1.5],
    ]) {
      requests.push(
        await client.requestInference({
          modelId: IRIS_SHA256,
          inputs: [{ name: "input", dtype: "float32", shape: [1, 4], data: row }],
          fee: FEE,
        }),
      );
    }
    assert.deepEqual(
      requests.map((r) => r.requestId),
      [1n, 2n, 3n],
    );
    assert.equal(new Set(requests.map((r) => r.blockNumber)).size, 3, "automine: one block each");

    await caughtUp();
    const queued = await jobs();
    assert.deepEqual(
      queued.map((j) => j.id),
      ["31337-1", "31337-2", "31337-3"],
    );
    for (const [i, job] of queued.entries()) {
      const data = job.data as InferenceJob;
      const req = requests[i]!;
      assert.equal(job.name, "infer");
      assert.equal(data.chainId, 31337);
      assert.equal(data.hub, FIXED_ADDRESSES.inferenceHub);
      assert.equal(data.modelId, IRIS_SHA256);
      assert.equal(data.items.length, 1);
      const item = data.items[0]!;
      assert.equal(item.request.requestId, req.requestId.toString());
      assert.equal(item.request.fee, FEE.toString());
      assert.equal(item.request.deadline, req.request.deadline.toString());
      assert.equal(item.blockNumber, req.blockNumber.toString());
      assert.equal(item.txHash, req.txHash);
      assert.equal(sha256(item.input), item.request.inputHash, "the inline input is what was committed");
      assert.equal(job.opts.attempts, 5);
      assert.deepEqual(job.opts.backoff, { type: "exponential", delay: 1000 });
    }
    assert.equal(relayer!.watcher.stats.requestsQueued, 3);
  });

  test("a restart resumes from the checkpoint and queues nothing twice", async () => {
    const before = await checkpoint();
    await relayer!.stop();
    assert.equal(relayer!.watcher.stats.running, false);
    const r = await start();
    await caughtUp();
    await new Promise((res) => setTimeout(res, 300)); // a few more polls
    assert.equal(await checkpoint(), before);
    assert.equal(r.watcher.stats.blocksProcessed, 0, "no block scanned twice");
    assert.equal(r.watcher.stats.requestsQueued, 0);
    assert.deepEqual(
      (await jobs()).map((j) => j.id),
      ["31337-1", "31337-2", "31337-3"],
    );
  });

  test("requests mined in one block, same model, become one job", async () => {
    const user = wallet(6);
    const nonce = await publicClient.getTransactionCount({
      address: user.account.address,
      blockTag: "pending",
    });
    await publicClient.request({ method: "evm_setAutomine" as never, params: [false] as never });
    try {
      for (let i = 0; i < 2; i++) {
        await user.writeContract({
          address: FIXED_ADDRESSES.inferenceHub,
          abi: inferenceHubAbi,
          functionName: "requestInference",
          args: [
            IRIS_SHA256,
            encodeTensors(
              [{ name: "input", dtype: "float32", shape: [1, 4], data: [6.0, 2.2, 5.0, 1.5 + i] }],
              6,
            ),
            0,
          ],
          value: FEE,
          nonce: nonce + i,
          gas: 500_000n,
        });
      }
      await publicClient.request({ method: "evm_mine" as never });
    } finally {
      await publicClient.request({ method: "evm_setAutomine" as never, params: [true] as never });
    }
    const block = await publicClient.getBlock({ blockTag: "latest", includeTransactions: false });
    const receipts = await Promise.all(
      block.transactions.map((hash) => publicClient.getTransactionReceipt({ hash })),
    );
    const ids = parseEventLogs({
      abi: inferenceHubAbi,
      eventName: "InferenceRequested",
      logs: receipts.flatMap((r) => r.logs),
    }).map((l) => l.args.requestId);
    assert.deepEqual(ids, [4n, 5n]);

    await caughtUp();
    const queued = await jobs();
    assert.deepEqual(
      queued.map((j) => j.id),
      ["31337-1", "31337-2", "31337-3", "31337-4"],
    );
    const grouped = queued[3]!.data as InferenceJob;
    assert.deepEqual(
      grouped.items.map((i) => i.request.requestId),
      ["4", "5"],
    );
  });

  test("a lost checkpoint replays every block, and BullMQ drops every duplicate", async () => {
    await relayer!.stop();
    await redis.del(checkpointKey!);
    const r = await start();
    await caughtUp();
    assert.equal(r.watcher.stats.requestsQueued, 5, "all requests replayed");
    assert.deepEqual(
      (await jobs()).map((j) => j.id),
      ["31337-1", "31337-2", "31337-3", "31337-4"],
    );
    const counts = await queue.getJobCounts("waiting");
    assert.equal(counts.waiting, 4);
  });

  test("GET /requests/:id reports a pending request; /health is ok", async () => {
    const url = relayer!.url;
    const req = requests[1]!;
    const res = await fetch(`${url}/requests/${req.requestId}`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      requestId: "2",
      state: "Pending",
      modelId: IRIS_SHA256,
      requester: account(5).address,
      callbackGasLimit: 0,
      fee: FEE.toString(),
      deadline: req.request.deadline.toString(),
      inputHash: req.request.inputHash,
      inputIsRef: false,
      redundancy: 1,
      requestTx: req.txHash,
      requestBlock: req.blockNumber.toString(),
    });
    assert.equal((await fetch(`${url}/requests/999`)).status, 404);
    assert.equal((await fetch(`${url}/requests/nope`)).status, 400);

    const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
    assert.equal(health.status, "ok");
    assert.equal(health.chainId, 31337);
    assert.equal(health.lagBlocks, 0);
    assert.equal(health.redis, "ok");
    assert.equal((health.queue as { waiting: number }).waiting, 4);
  });
});
