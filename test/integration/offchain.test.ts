/**
 * Off-chain inference end to end on a real `hardhat node`, Redis and onnxruntime: a payer
 * deposits into BatchSettlement and approves the relayer's inference node; three signed
 * requests to `POST /inference` answer with what a direct onnxruntime run gives; the node posts
 * them as one Merkle batch charged to the deposit; each result's proof from the relayer passes
 * `verifyLeaf` on chain; after the window `settleBatch` pays the node. Refused requests (bad
 * signature, replayed nonce, expired, fee or deposit too small, wrong input shape) are
 * charged nothing.
 *
 * Isolated like the other integration suites: its own Hardhat port, queue name, deployments
 * folder and store; its Redis keys are deleted at the end.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import * as ort from "onnxruntime-node";
import pino from "pino";
import {
  createWalletClient,
  http,
  keccak256,
  maxUint256,
  parseEventLogs,
  sha256,
  type Hex,
  type PublicClient,
} from "viem";
import { hardhat } from "viem/chains";
import { DEVNET_PARAMS } from "../../deploy/config";
import { SESSION_OPTIONS, fromOrtOutputs } from "../../inference-worker";
import { offchainNonceKey, parseConfig, startRelayer, type Relayer } from "../../node";
import {
  FIXED_ADDRESSES,
  GradnetClient,
  RelayerRequestError,
  batchProof,
  batchSettlementAbi,
  encodeTensors,
  modelRegistryAbi,
  nodeRegistryAbi,
  offchainRequestId,
  postOffchainRequest,
  signOffchainRequest,
  verifyBatchProof,
  type NamedTensor,
  type OffchainRequestBody,
  type OffchainResult,
} from "../../sdk";
import { devAccount } from "../../scripts/devnet";
import { ROOT, startTestChain, waitUntil, type TestChain } from "./harness";

const IRIS_FILE = path.join(ROOT, "models", "iris-mlp.onnx");
const IRIS = fs.readFileSync(IRIS_FILE);
const IRIS_ID = sha256(IRIS);
const FEE = 10n ** 15n;
const ACCOUNTS = { owner: 2, node: 3, payer: 4, stranger: 6, poor: 7 } as const;
const BATCH_STATE = { Posted: 1, Settled: 3 } as const;
const ROWS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.7, 3.0, 5.2, 2.3],
  [5.9, 3.0, 4.2, 1.5],
];
const flower = (row: number[]): NamedTensor[] => [
  { name: "input", dtype: "float32", shape: [1, 4], data: row },
];

async function irisDirect(rows: number[][]): Promise<Hex> {
  const session = await ort.InferenceSession.create(IRIS_FILE, SESSION_OPTIONS);
  const out = await session.run({
    input: new ort.Tensor("float32", Float32Array.from(rows.flat()), [rows.length, 4]),
  });
  return encodeTensors(fromOrtOutputs(out, session.outputNames), 6);
}

describe("off-chain inference paid from a BatchSettlement deposit", { timeout: 180_000 }, () => {
  const queueName = `gradnet-offchain-it-${process.pid}-${Date.now()}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-offchain-it-"));
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  let chain: TestChain | undefined;
  let publicClient: PublicClient;
  let relayer: Relayer | undefined;
  let redis: Redis | undefined;
  const node = devAccount(ACCOUNTS.node);
  const payer = devAccount(ACCOUNTS.payer);
  const served: OffchainResult[] = [];
  let firstBody: OffchainRequestBody;

  const wallet = (account: ReturnType<typeof devAccount>) =>
    createWalletClient({ chain: hardhat, transport: http(chain!.rpcUrl), account: account.account });
  const client = (account: ReturnType<typeof devAccount>) =>
    new GradnetClient({ publicClient, walletClient: wallet(account), addresses: FIXED_ADDRESSES });
  const mined = async (hash: Hex) => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    return receipt;
  };
  const bs = { address: FIXED_ADDRESSES.batchSettlement, abi: batchSettlementAbi } as const;
  const depositOf = (a: Hex) => publicClient.readContract({ ...bs, functionName: "depositOf", args: [a] });
  const batchCount = () => publicClient.readContract({ ...bs, functionName: "batchCount" });
  const fund = async (account: ReturnType<typeof devAccount>, deposit: bigint) => {
    await mined(await wallet(account).writeContract({ ...bs, functionName: "deposit", value: deposit }));
    await mined(
      await wallet(account).writeContract({
        ...bs,
        functionName: "approveNode",
        args: [node.address, maxUint256],
      }),
    );
  };
  const sign = (
    account: ReturnType<typeof devAccount>,
    over: { input?: Hex; maxFee?: bigint; nonce?: bigint; expiry?: bigint } = {},
  ) =>
    signOffchainRequest(wallet(account), {
      domain: { chainId: 31337, verifyingContract: FIXED_ADDRESSES.batchSettlement },
      node: node.address,
      modelId: IRIS_ID,
      input: encodeTensors(flower(ROWS[0]!), 6),
      maxFee: FEE,
      ...over,
    });
  const refused = async (body: OffchainRequestBody, status: number, code: string, message?: RegExp) => {
    await assert.rejects(postOffchainRequest(relayer!.url, body), (err: unknown) => {
      assert.ok(err instanceof RelayerRequestError, String(err));
      assert.equal(err.status, status, err.message);
      assert.equal(err.code, code);
      if (message !== undefined) assert.match(err.message, message);
      return true;
    });
  };

  before(async () => {
    chain = await startTestChain(tmp);
    publicClient = chain.publicClient;
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  });

  after(async () => {
    const key = relayer?.checkpointKey;
    await relayer?.stop().catch(() => undefined);
    if (redis !== undefined) {
      const queue = new Queue(queueName, { connection: redis });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close().catch(() => undefined);
      const keys = [ACCOUNTS.payer, ACCOUNTS.poor].map((i) =>
        offchainNonceKey(31337, FIXED_ADDRESSES.batchSettlement, node.address, devAccount(i).address),
      );
      if (key !== undefined) keys.push(key);
      await redis.del(...keys).catch(() => undefined);
      await redis.quit().catch(() => redis!.disconnect());
    }
    await chain?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("a relayer with an inference node's key serves the registered iris model", async () => {
    await mined(
      await wallet(node).writeContract({
        address: FIXED_ADDRESSES.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "register",
        args: [1],
        value: DEVNET_PARAMS.stake.minStakeInference,
      }),
    );
    relayer = await startRelayer(
      parseConfig({
        RPC_URL: chain!.rpcUrl,
        REDIS_URL: redisUrl,
        DEPLOYMENTS_DIR: chain!.deploymentsDir,
        QUEUE_NAME: queueName,
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        STORE_DIR: path.join(tmp, "store"),
        OFFCHAIN_NODE_PRIVATE_KEY: node.privateKey,
        OFFCHAIN_MODEL_CACHE_DIR: path.join(tmp, "models"),
        BATCH_MAX_LEAVES: "3",
        BATCH_MAX_WAIT_MS: "600000",
        LOG_LEVEL: "warn",
      }),
      { logger: pino({ level: "warn" }) },
    );
    const info = (await (await fetch(`${relayer.url}/inference`)).json()) as { node: Hex; chainId: number };
    assert.deepEqual(info, {
      chainId: 31337,
      verifyingContract: FIXED_ADDRESSES.batchSettlement,
      node: node.address,
      maxLeaves: 3,
      maxWaitMs: 600000,
    });

    const up = await fetch(`${relayer.url}/models`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: IRIS,
    });
    const { uri } = (await up.json()) as { uri: string };
    await mined(
      await wallet(devAccount(ACCOUNTS.owner)).writeContract({
        address: FIXED_ADDRESSES.modelRegistry,
        abi: modelRegistryAbi,
        functionName: "registerModel",
        args: [
          IRIS_ID,
          uri,
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
      }),
    );
    // Room for three requests and half of a fourth.
    await fund(payer, 3n * FEE + FEE / 2n);
  });

  test("refused requests say why and charge nothing", async () => {
    // Signed by someone else on the payer's behalf.
    const forged = { ...(await sign(devAccount(ACCOUNTS.stranger))), payer: payer.address };
    await refused(forged, 401, "BAD_SIGNATURE");
    // A valid signature over other terms than those sent.
    await refused({ ...(await sign(payer)), maxFee: (FEE * 2n).toString() }, 401, "BAD_SIGNATURE");
    await refused(await sign(payer, { expiry: BigInt(Math.floor(Date.now() / 1000) - 1) }), 400, "EXPIRED");
    await refused(await sign(payer, { maxFee: FEE - 1n }), 402, "FEE_TOO_LOW");
    const wrongShape = encodeTensors(
      [{ name: "input", dtype: "float32", shape: [1, 3], data: [1, 2, 3] }],
      6,
    );
    await refused(await sign(payer, { input: wrongShape }), 400, "INVALID_INPUT", /input "input"/);
    const poor = devAccount(ACCOUNTS.poor);
    await fund(poor, FEE / 2n);
    await refused(await sign(poor), 402, "INSUFFICIENT_FUNDS", /deposit 500000000000000/);
    assert.equal(relayer!.offchain!.poster.pendingResults(), 0);
    assert.equal(await depositOf(payer.address), 3n * FEE + FEE / 2n);
  });

  test("three signed requests answer with what onnxruntime computes directly", async () => {
    const payerClient = client(payer);
    for (const [i, row] of ROWS.entries()) {
      const nonce = BigInt(1000 + i);
      const result = await payerClient.inferOffchain({
        relayerUrl: relayer!.url,
        modelId: IRIS_ID,
        inputs: flower(row),
        nonce,
      });
      assert.equal(result.output, await irisDirect([row]));
      assert.equal(result.outputHash, keccak256(result.output));
      assert.equal(result.inputHash, sha256(encodeTensors(flower(row), 6)));
      assert.equal(result.requestId, offchainRequestId(payer.address, nonce));
      assert.equal(result.fee, FEE);
      assert.equal(result.node, node.address);
      assert.equal(result.batch, "pending");
      assert.deepEqual(
        result.outputs.map((t) => t.name),
        ["label", "probabilities"],
      );
      served.push(result);
    }
    assert.deepEqual(
      served.map((r) => r.outputs.find((t) => t.name === "label")!.data[0]),
      [0n, 2n, 1n],
    );
    // The same signed request again: its nonce is spent.
    firstBody = await sign(payer, { nonce: 1000n, input: encodeTensors(flower(ROWS[0]!), 6) });
    await refused(firstBody, 409, "NONCE_USED");
    // A fourth would take the payer past its deposit, counting the three accepted ones.
    await refused(await sign(payer, { nonce: 2000n }), 402, "INSUFFICIENT_FUNDS");
  });

  test("the node posts the three as one batch charged to the deposit", async () => {
    await waitUntil(
      "the batch to be posted",
      async () => ((await batchCount()) === 1n ? true : undefined),
      30_000,
    );
    const logs = await publicClient.getContractEvents({ ...bs, eventName: "BatchPosted", fromBlock: 0n });
    assert.equal(logs.length, 1);
    const ev = logs[0]!.args;
    assert.equal(ev.batchId, 1n);
    assert.equal(ev.node, node.address);
    assert.equal(ev.payer, payer.address);
    assert.equal(ev.modelId, IRIS_ID);
    assert.equal(ev.leafCount, 3);
    assert.equal(ev.totalFee, 3n * FEE);
    assert.equal(await depositOf(payer.address), FEE / 2n);
    await waitUntil(
      "the poster to drop the batch",
      async () => (relayer!.offchain!.poster.pendingResults() === 0 ? true : undefined),
      10_000,
    );
    const receipt = await publicClient.getTransactionReceipt({ hash: logs[0]!.transactionHash! });
    assert.equal(
      parseEventLogs({ abi: batchSettlementAbi, eventName: "BatchPosted", logs: receipt.logs }).length,
      1,
    );
  });

  test("each result's proof from the relayer verifies on chain", async () => {
    const { root } = await publicClient.readContract({ ...bs, functionName: "batch", args: [1n] });
    for (const r of served) {
      const p = await batchProof(relayer!.url, 1n, r.requestId);
      assert.equal(p.root, root);
      assert.equal(p.payer, payer.address);
      assert.equal(p.modelId, IRIS_ID);
      assert.equal(p.fee, FEE);
      assert.equal(p.outputHash, r.outputHash);
      assert.equal(p.inputHash, r.inputHash);
      assert.ok(verifyBatchProof(root, r, p.proof));
      const onChain = (outputHash: Hex) =>
        publicClient.readContract({
          ...bs,
          functionName: "verifyLeaf",
          args: [1n, r.requestId, r.inputHash, outputHash, p.proof],
        });
      assert.equal(await onChain(r.outputHash), true);
      assert.equal(await onChain(keccak256(`${r.output}00`)), false);
    }
  });

  test("after the challenge window settleBatch pays the node", async () => {
    await publicClient.request({
      method: "evm_increaseTime" as never,
      params: [DEVNET_PARAMS.settlement.challengeWindow] as never,
    });
    await mined(await wallet(payer).writeContract({ ...bs, functionName: "settleBatch", args: [1n] }));
    const batch = await publicClient.readContract({ ...bs, functionName: "batch", args: [1n] });
    assert.equal(batch.state, BATCH_STATE.Settled);
    const protocol = (3n * FEE * BigInt(DEVNET_PARAMS.settlement.protocolFeeBps)) / 10_000n;
    assert.equal(
      await publicClient.readContract({ ...bs, functionName: "credits", args: [node.address] }),
      3n * FEE - protocol,
    );
  });

  test("metrics count requests by outcome and the batches posted", async () => {
    const text = await (await fetch(`${relayer!.url}/metrics`)).text();
    const value = (line: string) =>
      Number(
        text
          .split("\n")
          .find((l) => l.startsWith(`${line} `))
          ?.split(" ")[1],
      );
    assert.equal(value('gradnet_offchain_requests_total{outcome="served"}'), 3);
    assert.equal(value('gradnet_offchain_requests_total{outcome="bad_signature"}'), 2);
    assert.equal(value('gradnet_offchain_requests_total{outcome="insufficient_funds"}'), 2);
    assert.equal(value('gradnet_offchain_requests_total{outcome="nonce_used"}'), 1);
    assert.equal(value("gradnet_batch_poster_batches_posted_total"), 1);
  });

  test("two concurrent requests never spend the same deposit twice", async () => {
    const poor = devAccount(ACCOUNTS.poor);
    // FEE / 2 from before, plus FEE: room for one request, not two.
    await mined(await wallet(poor).writeContract({ ...bs, functionName: "deposit", value: FEE }));
    const bodies = await Promise.all([sign(poor, { nonce: 1n }), sign(poor, { nonce: 2n })]);
    const settled = await Promise.allSettled(bodies.map((b) => postOffchainRequest(relayer!.url, b)));
    assert.equal(settled.filter((r) => r.status === "fulfilled").length, 1);
    const failed = settled.find((r) => r.status === "rejected");
    assert.ok(failed?.reason instanceof RelayerRequestError);
    assert.equal(failed.reason.code, "INSUFFICIENT_FUNDS");
    assert.equal(relayer!.offchain!.poster.pendingFees(poor.address), FEE);
  });

  test("on stop the relayer posts what it holds; used nonces survive the restart", async () => {
    const config = relayer!.offchain!.service.info();
    await relayer!.stop();
    // The poor payer's one result was posted on the way down, long before BATCH_MAX_WAIT_MS.
    assert.equal(await batchCount(), 2n);
    const second = await publicClient.readContract({ ...bs, functionName: "batch", args: [2n] });
    assert.equal(second.payer, devAccount(ACCOUNTS.poor).address);
    assert.equal(second.fee, FEE);
    relayer = await startRelayer(
      parseConfig({
        RPC_URL: chain!.rpcUrl,
        REDIS_URL: redisUrl,
        DEPLOYMENTS_DIR: chain!.deploymentsDir,
        QUEUE_NAME: queueName,
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        STORE_DIR: path.join(tmp, "store"),
        OFFCHAIN_NODE_PRIVATE_KEY: node.privateKey,
        OFFCHAIN_MODEL_CACHE_DIR: path.join(tmp, "models"),
        BATCH_MAX_LEAVES: String(config.maxLeaves),
        LOG_LEVEL: "warn",
      }),
      { logger: pino({ level: "warn" }) },
    );
    await refused(firstBody, 409, "NONCE_USED");
    // The batch's leaves are still served from the store.
    assert.equal((await batchProof(relayer.url, 1n, served[0]!.requestId)).outputHash, served[0]!.outputHash);
  });
});
