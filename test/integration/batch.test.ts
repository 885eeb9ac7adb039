/**
 * Batch settlement end to end on a real `hardhat node`: a payer deposits and approves a node; the
 * node's batch poster (viem adapter) posts a Merkle root once it holds N results; the relayer
 * serves each result's proof, which BatchSettlement accepts; after the window the batch settles
 * and the node withdraws its earnings. A second poster over the same store, after a lost receipt,
 * finds the batch on chain instead of posting it again.
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
import pino from "pino";
import { createWalletClient, http, keccak256, parseEther, toHex, type Hex, type PublicClient } from "viem";
import { hardhat } from "viem/chains";
import {
  BatchPoster,
  BatchStore,
  parseConfig,
  startRelayer,
  viemBatchChain,
  type BatchChain,
  type Relayer,
} from "../../node";
import { DEVNET_PARAMS } from "../../deploy/config";
import { FIXED_ADDRESSES, batchSettlementAbi, nodeRegistryAbi, verifyBatchProof } from "../../sdk";
import { devAccount } from "../../scripts/devnet";
import { startTestChain, type TestChain } from "./harness";

const ACCOUNTS = { node: 3, payer: 4 } as const;
const MODEL_ID = keccak256(toHex("gradnet batch integration test model"));
const FEE = 10n ** 14n;
const N = 4;
const BATCH_STATE = { Posted: 1, Settled: 3 } as const;

describe("batch settlement on a Hardhat node", { timeout: 120_000 }, () => {
  const queueName = `gradnet-batch-it-${process.pid}-${Date.now()}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-batch-it-"));
  const storeDir = path.join(tmp, "store");
  let chain: TestChain | undefined;
  let publicClient: PublicClient;
  let relayer: Relayer | undefined;
  let redis: Redis | undefined;
  let batchChain: BatchChain;
  const node = devAccount(ACCOUNTS.node);
  const payer = devAccount(ACCOUNTS.payer);
  const results = Array.from({ length: N + 1 }, (_, i) => ({
    requestId: BigInt(500 + i),
    inputHash: keccak256(toHex(`input ${i}`)),
    outputHash: keccak256(toHex(`output ${i}`)),
    fee: FEE + BigInt(i),
  }));

  const wallet = (account: ReturnType<typeof devAccount>) =>
    createWalletClient({ chain: hardhat, transport: http(chain!.rpcUrl), account: account.account });
  const mined = async (hash: Hex) => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    return receipt;
  };
  const bs = { address: FIXED_ADDRESSES.batchSettlement, abi: batchSettlementAbi } as const;
  const batchOf = (batchId: bigint) =>
    publicClient.readContract({ ...bs, functionName: "batch", args: [batchId] });
  const batchCount = () => publicClient.readContract({ ...bs, functionName: "batchCount" });
  const depositOf = (a: Hex) => publicClient.readContract({ ...bs, functionName: "depositOf", args: [a] });
  const creditsOf = (a: Hex) => publicClient.readContract({ ...bs, functionName: "credits", args: [a] });
  const verifyLeaf = (
    batchId: bigint,
    r: { requestId: bigint; inputHash: Hex; outputHash: Hex },
    proof: Hex[],
  ) =>
    publicClient.readContract({
      ...bs,
      functionName: "verifyLeaf",
      args: [batchId, r.requestId, r.inputHash, r.outputHash, proof],
    });
  const poster = (store: BatchStore) =>
    new BatchPoster({
      chain: batchChain,
      store,
      policy: { maxLeaves: N, maxAgeMs: 60_000 },
      intervalMs: 50,
      logger: pino({ level: "silent" }),
    });

  before(async () => {
    chain = await startTestChain(tmp);
    publicClient = chain.publicClient;
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 2 });
    batchChain = viemBatchChain({
      publicClient,
      rpcUrl: chain.rpcUrl,
      chain: hardhat,
      privateKey: node.privateKey,
      batchSettlement: FIXED_ADDRESSES.batchSettlement,
    });
  });

  after(async () => {
    const key = relayer?.checkpointKey;
    await relayer?.stop().catch(() => undefined);
    if (redis !== undefined) {
      const queue = new Queue(queueName, { connection: redis });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close().catch(() => undefined);
      if (key !== undefined) await redis.del(key).catch(() => undefined);
      await redis.quit().catch(() => redis!.disconnect());
    }
    await chain?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("an inference node and a payer with a deposit and an allowance", async () => {
    await mined(
      await wallet(node).writeContract({
        address: FIXED_ADDRESSES.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "register",
        args: [1],
        value: DEVNET_PARAMS.stake.minStakeInference,
      }),
    );
    await mined(
      await wallet(payer).writeContract({ ...bs, functionName: "deposit", value: parseEther("1") }),
    );
    await mined(
      await wallet(payer).writeContract({
        ...bs,
        functionName: "approveNode",
        args: [node.address, parseEther("0.5")],
      }),
    );
    assert.equal(await depositOf(payer.address), parseEther("1"));
  });

  test("the poster posts one root once it holds N results, and keeps the leaves on disk", async () => {
    const p = poster(new BatchStore(path.join(storeDir, "batches")));
    for (const r of results.slice(0, N - 1)) p.add(payer.address, MODEL_ID, r);
    assert.deepEqual(await p.tick(), []);
    p.add(payer.address, MODEL_ID, results[N - 1]!);
    const [posted] = await p.tick();
    assert.equal(posted!.batchId, 1n);
    const batch = await batchOf(1n);
    assert.equal(batch.node, node.address);
    assert.equal(batch.leafCount, N);
    const total = results.slice(0, N).reduce((s, r) => s + r.fee, 0n);
    assert.equal(batch.fee, total);
    assert.equal(await depositOf(payer.address), parseEther("1") - total);
    assert.ok(fs.existsSync(path.join(storeDir, "batches", `${batch.root}.json`)));
  });

  test("the relayer serves each result's proof, and BatchSettlement accepts it", async () => {
    const started = await startRelayer(
      parseConfig({
        RPC_URL: chain!.rpcUrl,
        REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
        DEPLOYMENTS_DIR: chain!.deploymentsDir,
        QUEUE_NAME: queueName,
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        STORE_DIR: storeDir,
        LOG_LEVEL: "silent",
      }),
    );
    relayer = started;
    const url = started.url;
    const { root } = await batchOf(1n);
    for (const r of results.slice(0, N)) {
      const res = await fetch(`${url}/batches/1/proof/${r.requestId}`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { root: Hex; proof: Hex[]; outputHash: Hex; fee: string };
      assert.equal(body.root, root);
      assert.equal(body.outputHash, r.outputHash);
      assert.equal(body.fee, r.fee.toString());
      assert.ok(verifyBatchProof(root, r, body.proof));
      assert.equal(await verifyLeaf(1n, r, body.proof), true);
      assert.equal(await verifyLeaf(1n, { ...r, outputHash: keccak256(toHex("forged")) }, body.proof), false);
    }
    const missing = await fetch(`${url}/batches/1/proof/${results[N]!.requestId}`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: string }).error, "UNKNOWN_RESULT");
    assert.equal((await fetch(`${url}/batches/2/proof/500`)).status, 404);
  });

  test("a send whose receipt was lost is found by a restarted poster, not posted twice", async () => {
    const store = new BatchStore(path.join(storeDir, "batches"));
    // The first poster's send lands, but it never hears back (it dies while waiting).
    const deaf: BatchChain = {
      ...batchChain,
      postBatch: async (record) => {
        await batchChain.postBatch(record);
        throw new Error("process died while waiting for the receipt");
      },
    };
    const first = new BatchPoster({
      chain: deaf,
      store,
      policy: { maxLeaves: 1, maxAgeMs: 0 },
      intervalMs: 50,
      logger: pino({ level: "silent" }),
    });
    first.add(payer.address, MODEL_ID, results[N]!);
    await assert.rejects(first.tick(), /process died/);
    assert.equal(await batchCount(), 2n);

    const second = poster(store);
    assert.equal(await second.recover(), 1);
    const [found] = await second.tick();
    assert.equal(found!.batchId, 2n);
    assert.equal(await batchCount(), 2n, "not posted again");
    assert.deepEqual(await store.unposted(), []);
  });

  test("after the window the batch settles and the node withdraws its earnings", async () => {
    await publicClient.request({
      method: "evm_increaseTime" as never,
      params: [DEVNET_PARAMS.settlement.challengeWindow] as never,
    });
    await mined(await wallet(payer).writeContract({ ...bs, functionName: "settleBatch", args: [1n] }));
    const batch = await batchOf(1n);
    assert.equal(batch.state, BATCH_STATE.Settled);
    const protocol = (batch.fee * BigInt(DEVNET_PARAMS.settlement.protocolFeeBps)) / 10_000n;
    assert.equal(await creditsOf(node.address), batch.fee - protocol);
    const before = await publicClient.getBalance({ address: FIXED_ADDRESSES.batchSettlement });
    await mined(
      await wallet(node).writeContract({ ...bs, functionName: "withdrawEarnings", args: [node.address] }),
    );
    assert.equal(
      await publicClient.getBalance({ address: FIXED_ADDRESSES.batchSettlement }),
      before - (batch.fee - protocol),
    );
    assert.equal((await batchOf(2n)).state, BATCH_STATE.Posted);
  });
});
