/**
 * Redundancy end to end: the devnet's two honest workers and a third worker that lies
 * (FAULT_CORRUPT_OUTPUTS) answer one request for three answers. The honest majority's answer is
 * the result, equal to a direct onnxruntime run; the keeper pays the two agreeing workers and
 * slashes the liar; every wei is accounted for.
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
  parseEventLogs,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { hardhat } from "viem/chains";
import {
  FIXED_ADDRESSES,
  GradnetClient,
  encodeTensors,
  inferenceHubAbi,
  nodeRegistryAbi,
  settlementAbi,
} from "../../sdk";
import { SESSION_OPTIONS, fromOrtOutputs } from "../../inference-worker";
import { DEVNET_ROLES, devAccount, freePort, startDevnet, type Devnet } from "../../scripts/devnet";
import { DEVNET_PARAMS } from "../../deploy/config";

const ROOT = path.resolve(__dirname, "..", "..");
const IRIS_FILE = path.join(ROOT, "models", "iris-mlp.onnx");
let devnet: Devnet;
let liar: Address;
let publicClient: PublicClient;
let stateDir: string;

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-redundancy-"));
  devnet = await startDevnet({
    rpcPort: await freePort(),
    relayerPort: await freePort(),
    metricsPorts: [await freePort(), await freePort(), await freePort()],
    // The devnet's two honest workers and a third that answers wrong on purpose.
    workers: [{}, {}, { faultCorruptOutputs: true }],
    stateDir,
    queueName: `gradnet-redundancy-${process.pid}`,
    log: () => undefined,
  });
  publicClient = createPublicClient({
    chain: hardhat,
    transport: http(devnet.info.rpcUrl),
    pollingInterval: 100,
  }) as PublicClient;
  liar = devnet.info.workers.find((w) => w.faultCorruptOutputs)!.address;
});

after(async () => {
  if (devnet === undefined) return;
  const queue = new Queue(devnet.info.queueName, { connection: { url: devnet.info.redisUrl } });
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await devnet.stop();
});

describe("redundancy on the devnet", () => {
  test("three workers answer, the honest majority decides, the liar is slashed, every wei adds up", async () => {
    const user = devAccount(DEVNET_ROLES.user);
    const client = new GradnetClient({
      publicClient,
      walletClient: createWalletClient({
        chain: hardhat,
        transport: http(devnet.info.rpcUrl),
        account: user.account,
      }),
      addresses: FIXED_ADDRESSES,
    });
    const iris = devnet.info.models.find((m) => m.name === "iris-mlp")!;
    const flower = [5.9, 3.0, 5.1, 1.8];
    const sent = await client.requestInference({
      modelId: iris.modelId,
      inputs: [{ name: "input", dtype: "float32", shape: [1, 4], data: flower }],
      redundancy: 3,
    });
    assert.equal(sent.request.redundancy, 3);
    assert.equal(sent.request.fee, BigInt(iris.fee) * 3n);

    // The result is the honest answer: what onnxruntime gives here, byte for byte.
    const result = await client.waitForResult(sent.requestId, { timeoutMs: 60_000 });
    const session = await ort.InferenceSession.create(IRIS_FILE, SESSION_OPTIONS);
    const direct = await session.run({ input: new ort.Tensor("float32", Float32Array.from(flower), [1, 4]) });
    assert.equal(result.output, encodeTensors(fromOrtOutputs(direct, session.outputNames), 6));

    const hub = { address: FIXED_ADDRESSES.inferenceHub, abi: inferenceHubAbi } as const;
    const settlement = { address: FIXED_ADDRESSES.settlement, abi: settlementAbi } as const;
    // All three answered, each worker once; the liar's answer is not the agreed one.
    const agreement = await until("all three answers", async () => {
      const a = await publicClient.readContract({
        ...hub,
        functionName: "agreementOf",
        args: [sent.requestId],
      });
      return a.answers === 3 ? a : undefined;
    });
    assert.equal(agreement.agreeing, 2);
    const honest = devnet.info.workers.filter((w) => !w.faultCorruptOutputs).map((w) => w.address);
    for (const node of honest) {
      const key = await publicClient.readContract({
        ...hub,
        functionName: "answerOf",
        args: [sent.requestId, node],
      });
      assert.equal(key, agreement.agreedKey, `${node} agreed`);
    }
    const liarKey = await publicClient.readContract({
      ...hub,
      functionName: "answerOf",
      args: [sent.requestId, liar],
    });
    assert.notEqual(liarKey, `0x${"0".repeat(64)}` as Hex);
    assert.notEqual(liarKey, agreement.agreedKey);

    const credits = (a: `0x${string}`) =>
      publicClient.readContract({ ...settlement, functionName: "credits", args: [a] });
    const before = await Promise.all(honest.map(credits));
    const liarStake = await publicClient.readContract({
      address: FIXED_ADDRESSES.nodeRegistry,
      abi: nodeRegistryAbi,
      functionName: "stakeOf",
      args: [liar],
    });

    // Past the challenge window the devnet's keeper settles: pays the two, slashes the liar.
    await publicClient.request({
      method: "evm_increaseTime" as never,
      params: [DEVNET_PARAMS.settlement.challengeWindow + 1] as never,
    });
    await until("the keeper to finalise", async () => {
      const s = await publicClient.readContract({
        ...hub,
        functionName: "requestState",
        args: [sent.requestId],
      });
      return s === 5 ? s : undefined;
    });
    const slashed = await until("the keeper to slash the liar", async () => {
      const stake = await publicClient.readContract({
        address: FIXED_ADDRESSES.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "stakeOf",
        args: [liar],
      });
      return stake < liarStake ? liarStake - stake : undefined;
    });
    assert.equal(slashed, DEVNET_PARAMS.disputes.slashAmount);
    const logs = await publicClient.getContractEvents({
      ...settlement,
      eventName: "SettledRedundant",
      args: { requestId: sent.requestId },
      fromBlock: sent.blockNumber,
    });
    assert.equal(logs.length, 1, "settled once");
    const settled = logs[0]!.args;
    assert.deepEqual(
      [...settled.nodes!].map((n) => n.toLowerCase()).sort(),
      honest.map((n) => n.toLowerCase()).sort(),
    );
    const fee = sent.request.fee;
    const nodeShare = fee - settled.ownerAmount! - settled.protocolAmount!;
    const after = await Promise.all(honest.map(credits));
    const gained = after.map((a, i) => a - before[i]!);
    assert.equal(
      gained[0]! + gained[1]!,
      nodeShare,
      "the two agreeing workers share the node part, to the wei",
    );
    assert.ok(gained.every((g) => g >= settled.eachNodeAmount!));

    // Settlement holds exactly what it owes.
    const [balance, total, bonds] = await Promise.all([
      publicClient.getBalance({ address: FIXED_ADDRESSES.settlement }),
      publicClient.readContract({ ...settlement, functionName: "totalCredits" }),
      publicClient.readContract({ ...settlement, functionName: "bondsHeld" }),
    ]);
    assert.equal(balance, total + bonds);
    const fulfilled = parseEventLogs({
      abi: inferenceHubAbi,
      logs: await publicClient.getLogs({
        address: FIXED_ADDRESSES.inferenceHub,
        fromBlock: sent.blockNumber,
      }),
      eventName: "InferenceFulfilled",
    }).filter((l) => l.args.requestId === sent.requestId);
    assert.equal(fulfilled.length, 1, "one result, one callback");
  });
});
