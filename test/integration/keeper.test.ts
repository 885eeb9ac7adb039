/**
 * The settlement keeper against a real `hardhat node` and a real Redis: a fulfilled request is
 * finalised once its challenge window has passed, with the fee split as Settlement defines it; an
 * unanswered one is refunded once its deadline has passed; nothing is done twice.
 *
 * Isolated like test/integration/relayer.test.ts: its own Hardhat port, queue name, deployments
 * folder and model store; its Redis keys are deleted at the end.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import pino from "pino";
import {
  createWalletClient,
  http,
  keccak256,
  parseEther,
  parseEventLogs,
  toHex,
  type Hex,
  type PublicClient,
} from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import {
  FIXED_ADDRESSES,
  encodeTensors,
  inferenceHubAbi,
  modelRegistryAbi,
  nodeRegistryAbi,
  settlementAbi,
  type Request,
} from "../../sdk";
import { keeperCheckpointKey, parseConfig, startRelayer, type Relayer } from "../../node";
import { devAccount } from "../../scripts/devnet";
import { MNEMONIC, startTestChain, waitUntil, type TestChain } from "./harness";

const FEE = 10n ** 15n;
const OWNER_SHARE_BPS = 1000n;
const MODEL_ID = keccak256(toHex("gradnet keeper integration test model"));
const ACCOUNTS = { modelOwner: 2, node: 3, requester: 4, keeper: 8 } as const;
const STATE = { Pending: 1, Fulfilled: 2, Refunded: 4, Finalized: 5 } as const;
describe("settlement keeper on a Hardhat node and Redis", { timeout: 120_000 }, () => {
  const queueName = `gradnet-keeper-it-${process.pid}-${Date.now()}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-keeper-it-"));
  let chain: TestChain | undefined;
  let rpcUrl: string;
  let publicClient: PublicClient;
  let redis: Redis | undefined;
  let relayer: Relayer | undefined;
  let deploymentsDir: string;
  let redisUrl: string;
  const requests: Request[] = [];

  const account = (addressIndex: number) => mnemonicToAccount(MNEMONIC, { addressIndex });
  const wallet = (addressIndex: number) =>
    createWalletClient({ chain: hardhat, transport: http(rpcUrl), account: account(addressIndex) });
  const mined = async (hash: Hex) => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    return receipt;
  };
  const state = (requestId: bigint) =>
    publicClient.readContract({
      address: FIXED_ADDRESSES.inferenceHub,
      abi: inferenceHubAbi,
      functionName: "requestState",
      args: [requestId],
    });
  const credit = (addressIndex: number) =>
    publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "credits",
      args: [account(addressIndex).address],
    });
  const advance = async (seconds: number) => {
    await publicClient.request({ method: "evm_increaseTime" as never, params: [seconds] as never });
    await publicClient.request({ method: "evm_mine" as never });
  };
  const stateBecomes = (requestId: bigint, want: number) =>
    waitUntil(
      `request ${requestId} to reach state ${want}`,
      async () => ((await state(requestId)) === want ? true : undefined),
      15_000,
    );
  const hubEvents = async (eventName: "RequestReleased" | "RequestRefunded") =>
    publicClient.getContractEvents({
      address: FIXED_ADDRESSES.inferenceHub,
      abi: inferenceHubAbi,
      eventName,
      fromBlock: 0n,
      toBlock: "latest",
    });

  before(async () => {
    chain = await startTestChain(tmp);
    ({ rpcUrl, publicClient, deploymentsDir } = chain);
    redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  });

  after(async () => {
    const checkpointKey = relayer?.checkpointKey;
    await relayer?.stop().catch(() => undefined);
    if (redis !== undefined) {
      const queue = new Queue(queueName, { connection: redis });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close().catch(() => undefined);
      const keys = [keeperCheckpointKey(31337, FIXED_ADDRESSES.inferenceHub)];
      if (checkpointKey !== undefined) keys.push(checkpointKey);
      await redis.del(...keys).catch(() => undefined);
      await redis.quit().catch(() => redis!.disconnect());
    }
    await chain?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("a model, an inference node, two requests: one answered, one not", async () => {
    await mined(
      await wallet(ACCOUNTS.modelOwner).writeContract({
        address: FIXED_ADDRESSES.modelRegistry,
        abi: modelRegistryAbi,
        functionName: "registerModel",
        args: [
          MODEL_ID,
          "http://127.0.0.1:1/models/keeper-it",
          {
            inputs: [{ name: "input", dtype: 1, shape: [-1n, 4n] }],
            outputs: [{ name: "label", dtype: 7, shape: [-1n] }],
          },
          6,
          FEE,
          Number(OWNER_SHARE_BPS),
        ],
      }),
    );
    await mined(
      await wallet(ACCOUNTS.node).writeContract({
        address: FIXED_ADDRESSES.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "register",
        args: [1],
        value: parseEther("1"),
      }),
    );

    const requester = wallet(ACCOUNTS.requester);
    for (const x of [1.5, 2.5]) {
      const receipt = await mined(
        await requester.writeContract({
          address: FIXED_ADDRESSES.inferenceHub,
          abi: inferenceHubAbi,
          functionName: "requestInference",
          args: [
            MODEL_ID,
            encodeTensors([{ name: "input", dtype: "float32", shape: [1, 4], data: [x, x, x, x] }], 6),
            0,
          ],
          value: FEE,
        }),
      );
      const [log] = parseEventLogs({
        abi: inferenceHubAbi,
        eventName: "InferenceRequested",
        logs: receipt.logs,
      });
      requests.push(log!.args.request as Request);
    }
    assert.deepEqual(
      requests.map((r) => r.requestId),
      [1n, 2n],
    );

    const output = toHex("label: 1");
    await mined(
      await wallet(ACCOUNTS.node).writeContract({
        address: FIXED_ADDRESSES.inferenceHub,
        abi: inferenceHubAbi,
        functionName: "fulfill",
        args: [requests[0]!, 0, output, keccak256(output)],
      }),
    );
    assert.equal(await state(1n), STATE.Fulfilled);
    assert.equal(await state(2n), STATE.Pending);
  });

  test("the relayer starts its keeper, which tracks both and does nothing early", async () => {
    const config = parseConfig({
      RPC_URL: rpcUrl,
      REDIS_URL: redisUrl,
      DEPLOYMENTS_DIR: deploymentsDir,
      QUEUE_NAME: queueName,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "0",
      STORE_DIR: path.join(tmp, "store"),
      POLL_INTERVAL_MS: "100",
      LOG_LEVEL: "warn",
      KEEPER_PRIVATE_KEY: devAccount(ACCOUNTS.keeper).privateKey,
      KEEPER_INTERVAL_MS: "100",
    });
    relayer = await startRelayer(config, { logger: pino({ level: "warn" }) });
    const keeper = relayer.keeper;
    assert.ok(keeper !== undefined, "KEEPER_PRIVATE_KEY starts a keeper");
    assert.equal(keeper.stats().keeper, account(ACCOUNTS.keeper).address);
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    await waitUntil(
      "the keeper to scan to the head",
      async () => ((keeper.stats().scannedTo ?? -1n) >= head ? true : undefined),
      15_000,
    );
    await new Promise((r) => setTimeout(r, 300)); // a few loops
    const stats = keeper.stats();
    assert.equal(stats.tracked, 2);
    assert.equal(stats.finalized + stats.refunded, 0, "the window is open, the deadline ahead");
    assert.equal(await state(1n), STATE.Fulfilled);
    assert.equal(await state(2n), STATE.Pending);
    assert.equal(
      await redis!.get(keeperCheckpointKey(31337, FIXED_ADDRESSES.inferenceHub)),
      stats.scannedTo!.toString(),
    );
  });

  test("after the challenge window the answered request is finalised with the fee split", async () => {
    const window = (
      await publicClient.readContract({
        address: FIXED_ADDRESSES.settlement,
        abi: settlementAbi,
        functionName: "params",
      })
    ).challengeWindow;
    assert.equal(window, 60n);
    await advance(61);
    await stateBecomes(1n, STATE.Finalized);
    assert.equal(await state(2n), STATE.Pending, "not expired yet");

    const { protocolFeeBps } = await publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "params",
    });
    const ownerAmount = (FEE * OWNER_SHARE_BPS) / 10_000n;
    const protocolAmount = (FEE * BigInt(protocolFeeBps)) / 10_000n;
    assert.equal(await credit(ACCOUNTS.node), FEE - ownerAmount - protocolAmount);
    assert.equal(await credit(ACCOUNTS.node), (FEE * 85n) / 100n, "10% owner, 5% protocol");
    assert.equal(await credit(ACCOUNTS.modelOwner), ownerAmount);
  });

  test("after the deadline the unanswered request is refunded to its requester", async () => {
    await advance(3600);
    await stateBecomes(2n, STATE.Refunded);
    assert.equal(await credit(ACCOUNTS.requester), FEE);
  });

  test("nothing is done twice", async () => {
    const keeper = relayer!.keeper!;
    await new Promise((r) => setTimeout(r, 500)); // more loops
    await advance(3600);
    await new Promise((r) => setTimeout(r, 500));
    const stats = keeper.stats();
    assert.equal(stats.finalized, 1);
    assert.equal(stats.refunded, 1);
    assert.equal(stats.errors, 0, stats.lastError);
    assert.equal(stats.tracked, 0);
    assert.equal((await hubEvents("RequestReleased")).length, 1);
    assert.equal((await hubEvents("RequestRefunded")).length, 1);
    assert.equal(
      await publicClient.getTransactionCount({ address: account(ACCOUNTS.keeper).address }),
      2,
      "one finalizeBatch, one refundExpired",
    );
    assert.equal(await credit(ACCOUNTS.requester), FEE);

    const metrics = await relayer!.metrics.registry.metrics();
    assert.match(metrics, /^gradnet_keeper_finalized_total 1$/m);
    assert.match(metrics, /^gradnet_keeper_refunded_total 1$/m);
    assert.match(metrics, /^gradnet_keeper_errors_total 0$/m);
    assert.match(metrics, /^gradnet_keeper_tracked 0$/m);

    await relayer!.stop();
    assert.equal(keeper.stats().running, false);
  });
});
