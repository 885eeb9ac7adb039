/**
 * End to end on a real Hardhat node, real Redis and real ONNX: the devnet as `npm run devnet`
 * starts it (own ports, own queue, own state directory), then requests through every path.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { Queue } from "bullmq";
import {
  createPublicClient,
  createWalletClient,
  http,
  keccak256,
  parseEventLogs,
  sha256,
  type Hex,
  type PublicClient,
} from "viem";
import { hardhat } from "viem/chains";
import {
  FIXED_ADDRESSES,
  GradnetClient,
  FeeTooLowError,
  ModelNotFoundError,
  RequestExpiredError,
  RequestFailedError,
  classifierConsumerAbi,
  decodeTensors,
  encodeTensors,
  inferenceHubAbi,
  modelRegistryAbi,
  settlementAbi,
  toFixedPoint,
} from "../../sdk";
import { SESSION_OPTIONS, fromOrtOutputs } from "../../inference-worker";
import {
  BLOCK_INTERVAL_MS,
  DEVNET_ROLES,
  devAccount,
  freePort,
  startDevnet,
  type Devnet,
} from "../../scripts/devnet";

const ROOT = path.resolve(__dirname, "..", "..");
const IRIS_FILE = path.join(ROOT, "models", "iris-mlp.onnx");

let devnet: Devnet;
let classifiedRequest: bigint | undefined;
let publicClient: PublicClient;
let client: GradnetClient;
const user = devAccount(DEVNET_ROLES.user);

async function irisDirect(rows: number[][]): Promise<Hex> {
  const session = await ort.InferenceSession.create(IRIS_FILE, SESSION_OPTIONS);
  const out = await session.run({
    input: new ort.Tensor("float32", Float32Array.from(rows.flat()), [rows.length, 4]),
  });
  return encodeTensors(fromOrtOutputs(out, session.outputNames), 6);
}

function irisModel() {
  return devnet.info.models.find((m) => m.name === "iris-mlp")!;
}

before(async () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-e2e-"));
  devnet = await startDevnet({
    rpcPort: await freePort(),
    relayerPort: await freePort(),
    metricsPorts: [await freePort(), await freePort()],
    stateDir,
    queueName: `gradnet-e2e-${process.pid}`,
    log: () => undefined,
  });
  publicClient = createPublicClient({
    chain: hardhat,
    transport: http(devnet.info.rpcUrl),
    pollingInterval: 100,
  }) as PublicClient;
  const walletClient = createWalletClient({
    chain: hardhat,
    transport: http(devnet.info.rpcUrl),
    account: user.account,
  });
  client = new GradnetClient({ publicClient, walletClient, addresses: FIXED_ADDRESSES });
});

after(async () => {
  if (devnet === undefined) return;
  const queue = new Queue(devnet.info.queueName, { connection: { url: devnet.info.redisUrl } });
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await devnet.stop();
});

describe("the async pipeline on the devnet", () => {
  test("the example dApp asks the trained model and its callback stores the answer", async () => {
    const flower = [6.7, 3.0, 5.2, 2.3];
    const wallet = createWalletClient({
      chain: hardhat,
      transport: http(devnet.info.rpcUrl),
      account: user.account,
    });
    const hash = await wallet.writeContract({
      address: devnet.info.classifier,
      abi: classifierConsumerAbi,
      functionName: "classify",
      args: [flower.map((x) => toFixedPoint(x, 6)), 6],
      value: BigInt(irisModel().fee),
    });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    const [requested] = parseEventLogs({
      abi: inferenceHubAbi,
      logs: receipt.logs,
      eventName: "InferenceRequested",
    });
    const requestId = requested!.args.requestId;
    classifiedRequest = requestId;

    const result = await client.waitForResult(requestId, {
      timeoutMs: 60_000,
      fromBlock: receipt.blockNumber,
    });
    assert.equal(result.callbackResult, "Success");
    // The output is what a direct onnxruntime run encodes to, and the hash is recomputed here.
    assert.equal(result.output, await irisDirect([flower]));
    assert.equal(result.outputHash, keccak256(result.output));
    const [, answered, label, score, storedHash] = await publicClient.readContract({
      address: devnet.info.classifier,
      abi: classifierConsumerAbi,
      functionName: "classifications",
      args: [requestId],
    });
    assert.equal(answered, true);
    assert.equal(storedHash, result.outputHash);
    const outputs = decodeTensors(result.output);
    const probs = outputs.find((t) => t.name === "probabilities")!.data as number[];
    assert.equal(label, 2); // virginica
    assert.equal(Number(score) / 1e6, Math.max(...probs));
    assert.ok(devnet.info.workers.some((w) => w.address === result.node));
  });

  test("an EOA asks through the SDK and reads the answer from the event", async () => {
    const flower = [5.1, 3.5, 1.4, 0.2];
    const sent = await client.requestInference({
      modelId: irisModel().modelId,
      inputs: [{ name: "input", dtype: "float32", shape: [1, 4], data: flower }],
    });
    assert.equal(
      sent.request.inputHash,
      sha256(encodeTensors([{ name: "input", dtype: "float32", shape: [1, 4], data: flower }], 6)),
    );
    const result = await client.waitForResult(sent.requestId, { timeoutMs: 60_000 });
    assert.equal(result.status, "Success");
    assert.equal(result.callbackResult, "NotRequested");
    assert.equal(result.output, await irisDirect([flower]));
    assert.equal(result.outputs.find((t) => t.name === "label")!.data[0], 0n); // setosa
    assert.equal(await client.requestState(sent.requestId), "Fulfilled");
  });

  test("requests mined in one block run as one batch and land in one transaction", async () => {
    const rows = [
      [5.0, 3.4, 1.5, 0.2],
      [6.0, 2.9, 4.5, 1.5],
      [7.2, 3.6, 6.1, 2.5],
      [5.7, 2.8, 4.1, 1.3],
    ];
    const wallet = createWalletClient({
      chain: hardhat,
      transport: http(devnet.info.rpcUrl),
      account: user.account,
    });
    await publicClient.request({ method: "evm_setIntervalMining" as never, params: [0] as never });
    await publicClient.request({ method: "evm_setAutomine" as never, params: [false] as never });
    const hashes: Hex[] = [];
    try {
      for (const row of rows) {
        hashes.push(
          await wallet.writeContract({
            address: FIXED_ADDRESSES.inferenceHub,
            abi: inferenceHubAbi,
            functionName: "requestInference",
            args: [
              irisModel().modelId,
              encodeTensors([{ name: "input", dtype: "float32", shape: [1, 4], data: row }], 6),
              0,
            ],
            value: BigInt(irisModel().fee),
          }),
        );
      }
      await publicClient.request({ method: "evm_mine" as never, params: [] as never });
    } finally {
      await publicClient.request({ method: "evm_setAutomine" as never, params: [true] as never });
      await publicClient.request({
        method: "evm_setIntervalMining" as never,
        params: [BLOCK_INTERVAL_MS] as never,
      });
    }
    const receipts = await Promise.all(
      hashes.map((hash) => publicClient.waitForTransactionReceipt({ hash })),
    );
    assert.equal(new Set(receipts.map((r) => r.blockNumber)).size, 1, "all requests in one block");
    const ids = receipts.map(
      (r) =>
        parseEventLogs({ abi: inferenceHubAbi, logs: r.logs, eventName: "InferenceRequested" })[0]!.args
          .requestId,
    );
    const results = await Promise.all(ids.map((id) => client.waitForResult(id, { timeoutMs: 60_000 })));
    assert.equal(new Set(results.map((r) => r.txHash)).size, 1, "answered by one fulfillBatch");
    for (const [i, r] of results.entries()) assert.equal(r.output, await irisDirect([rows[i]!]));
  });

  test("a bad input is answered with InvalidInput and the fee is refunded", async () => {
    const before = await publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "credits",
      args: [user.address],
    });
    const sent = await client.requestInference({
      modelId: irisModel().modelId,
      inputs: [{ name: "input", dtype: "float32", shape: [1, 3], data: [1, 2, 3] }],
    });
    await assert.rejects(
      client.waitForResult(sent.requestId, { timeoutMs: 60_000 }),
      (e: unknown) =>
        e instanceof RequestFailedError &&
        e.status === "InvalidInput" &&
        /shape \[1, 3\] does not fit \[-1, 4\]/.test(e.reason),
    );
    assert.equal(await client.requestState(sent.requestId), "Failed");
    const afterCredits = await publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "credits",
      args: [user.address],
    });
    assert.equal(afterCredits - before, sent.request.fee);
  });

  test("a model whose bytes do not match its registered hash is refused, never run", async () => {
    // Register an id that is not the hash of the bytes behind its URI.
    const fakeId = sha256(new TextEncoder().encode("some other model"));
    const owner = createWalletClient({
      chain: hardhat,
      transport: http(devnet.info.rpcUrl),
      account: devAccount(DEVNET_ROLES.modelOwner).account,
    });
    const hash = await owner.writeContract({
      address: FIXED_ADDRESSES.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "registerModel",
      args: [
        fakeId,
        irisModel().uri,
        {
          inputs: [{ name: "input", dtype: 1, shape: [-1n, 4n] }],
          outputs: [{ name: "probabilities", dtype: 1, shape: [-1n, 3n] }],
        },
        6,
        0n,
        0,
      ],
    });
    await publicClient.waitForTransactionReceipt({ hash });
    const sent = await client.requestInference({
      modelId: fakeId,
      inputs: [{ name: "input", dtype: "float32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
      fee: 1n,
    });
    await assert.rejects(
      client.waitForResult(sent.requestId, { timeoutMs: 60_000 }),
      (e: unknown) =>
        e instanceof RequestFailedError &&
        e.status === "ModelFailed" &&
        /not the registered id/.test(e.reason),
    );
    // The refusal is counted in the workers' metrics.
    const metrics = (
      await Promise.all(devnet.info.workers.map(async (w) => (await fetch(`${w.metricsUrl}/metrics`)).text()))
    ).join("\n");
    assert.match(metrics, /gradnet_worker_requests_total\{status="ModelFailed",outcome="landed"\} [1-9]/);
    assert.match(metrics, /gradnet_worker_requests_total\{status="Success",outcome="landed"\} [1-9]/);
  });

  test("the keeper settles an answered request once its challenge window has passed", async () => {
    assert.ok(classifiedRequest !== undefined, "the first test made a request");
    const result = await client.waitForResult(classifiedRequest, { timeoutMs: 10_000 });
    const creditOf = (account: `0x${string}`) =>
      publicClient.readContract({
        address: FIXED_ADDRESSES.settlement,
        abi: settlementAbi,
        functionName: "credits",
        args: [account],
      });
    const before = await creditOf(result.node);
    const window = (
      await publicClient.readContract({
        address: FIXED_ADDRESSES.settlement,
        abi: settlementAbi,
        functionName: "params",
      })
    ).challengeWindow;
    await publicClient.request({
      method: "evm_increaseTime" as never,
      params: [Number(window) + 1] as never,
    });
    await publicClient.request({ method: "evm_mine" as never, params: [] as never });
    const deadline = Date.now() + 20_000;
    while ((await client.requestState(classifiedRequest)) !== "Finalized") {
      assert.ok(Date.now() < deadline, "finalised by the keeper within 20 s");
      await new Promise((r) => setTimeout(r, 200));
    }
    // At least this request's node share (fee less 10% owner, 5% protocol); the same node may
    // have had other answers settled by the keeper in the same window.
    const fee = BigInt(irisModel().fee);
    const ownerShare = (fee * 1000n) / 10_000n;
    const protocolShare = (fee * 500n) / 10_000n;
    assert.ok((await creditOf(result.node)) - before >= fee - ownerShare - protocolShare);
  });

  test("the SDK turns reverts and expiry into typed errors", async () => {
    const unknown = sha256(new TextEncoder().encode("no such model"));
    const input = [{ name: "input", dtype: "float32" as const, shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }];
    await assert.rejects(
      client.requestInference({ modelId: unknown, inputs: input, fee: 1n }),
      (e: unknown) => e instanceof ModelNotFoundError && e.modelId === unknown,
    );
    const fee = BigInt(irisModel().fee);
    await assert.rejects(
      client.requestInference({ modelId: irisModel().modelId, inputs: input, fee: fee - 1n }),
      (e: unknown) => e instanceof FeeTooLowError && e.paid === fee - 1n && e.required === fee,
    );
    // Nobody answers while the queue is paused; past the deadline the request can only be refunded.
    const queue = new Queue(devnet.info.queueName, { connection: { url: devnet.info.redisUrl } });
    await queue.pause();
    try {
      const sent = await client.requestInference({ modelId: irisModel().modelId, inputs: input });
      await publicClient.request({ method: "evm_increaseTime" as never, params: [3601] as never });
      await publicClient.request({ method: "evm_mine" as never, params: [] as never });
      await assert.rejects(
        client.waitForResult(sent.requestId, { timeoutMs: 20_000 }),
        (e: unknown) => e instanceof RequestExpiredError && e.requestId === sent.requestId,
      );
    } finally {
      await queue.resume();
      await queue.close();
    }
  });
});
