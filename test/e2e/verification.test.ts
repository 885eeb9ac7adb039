/**
 * Disputes end to end on the devnet (real Hardhat node, Redis, ONNX): a worker that lies is
 * challenged by the full node's verifier, the committee of the three devnet verifiers votes,
 * the worker is slashed and jailed, the requester refunded, the challenger and voters paid, to
 * the wei. An honest answer is verified, never challenged, and finalised by the keeper.
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
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { hardhat } from "viem/chains";
import {
  FIXED_ADDRESSES,
  GradnetClient,
  Roles,
  encodeTensors,
  inferenceHubAbi,
  modelRegistryAbi,
  nodeRegistryAbi,
  settlementAbi,
} from "../../sdk";
import { SESSION_OPTIONS, corruptOutput, fromOrtOutputs } from "../../inference-worker";
import {
  DEVNET_ROLES,
  devAccount,
  devnetSummary,
  freePort,
  startDevnet,
  type Devnet,
} from "../../scripts/devnet";

const ROOT = path.resolve(__dirname, "..", "..");
const IRIS_FILE = path.join(ROOT, "models", "iris-mlp.onnx");
const BPS = 10_000n;
const VERDICT_ACCUSED_WRONG = 2;

let devnet: Devnet;
let publicClient: PublicClient;
let client: GradnetClient;
const user = devAccount(DEVNET_ROLES.user);

async function irisDirect(row: number[]): Promise<Hex> {
  const session = await ort.InferenceSession.create(IRIS_FILE, SESSION_OPTIONS);
  const out = await session.run({ input: new ort.Tensor("float32", Float32Array.from(row), [1, 4]) });
  return encodeTensors(fromOrtOutputs(out, session.outputNames), 6);
}

const iris = () => devnet.info.models.find((m) => m.name === "iris-mlp")!;

const read = {
  credits: (account: Address) =>
    publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "credits",
      args: [account],
    }),
  node: (node: Address) =>
    publicClient.readContract({
      address: FIXED_ADDRESSES.nodeRegistry,
      abi: nodeRegistryAbi,
      functionName: "nodeInfo",
      args: [node],
    }),
  disputeOf: (requestId: bigint) =>
    publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "disputeOf",
      args: [requestId],
    }),
  dispute: (disputeId: bigint) =>
    publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "dispute",
      args: [disputeId],
    }),
};

const readSettlementParams = () =>
  publicClient.readContract({
    address: FIXED_ADDRESSES.settlement,
    abi: settlementAbi,
    functionName: "params",
  });

/** Settlement's ether is exactly its credits plus the bonds of open disputes. */
async function assertConserved(): Promise<void> {
  const [balance, totalCredits, bondsHeld] = await Promise.all([
    publicClient.getBalance({ address: FIXED_ADDRESSES.settlement }),
    publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "totalCredits",
    }),
    publicClient.readContract({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      functionName: "bondsHeld",
    }),
  ]);
  assert.equal(balance, totalCredits + bondsHeld, "settlement balance == totalCredits + bondsHeld");
}

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    assert.ok(Date.now() < end, `${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A counter from the full node's /metrics (0 when absent). */
async function metric(name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${devnet.info.relayerUrl}/metrics`)).text();
  const escaped = `${name}${labels}`.replace(/[{}"]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${escaped} (\\S+)$`, "m").exec(text);
  return m === null ? 0 : Number(m[1]);
}

before(async () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-verify-"));
  // Only a lying worker answers: every result it posts is wrong on purpose.
  devnet = await startDevnet({
    rpcPort: await freePort(),
    relayerPort: await freePort(),
    workers: [{ faultCorruptOutputs: true, metricsPort: await freePort() }],
    stateDir,
    queueName: `gradnet-verify-${process.pid}`,
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

describe("verification and disputes on the devnet", () => {
  test("the full node runs a verifier for the three staked devnet verifiers", async () => {
    assert.deepEqual(
      devnet.info.verifiers,
      DEVNET_ROLES.verifiers.map((i) => devAccount(i).address),
    );
    assert.equal(devnet.info.verifyShare, 1);
    for (const v of devnet.info.verifiers) {
      assert.equal(
        await publicClient.readContract({
          address: FIXED_ADDRESSES.nodeRegistry,
          abi: nodeRegistryAbi,
          functionName: "isActive",
          args: [v, Roles.VERIFIER],
        }),
        true,
      );
    }
    assert.equal(devnet.info.workers.length, 1);
    assert.equal(devnet.info.workers[0]!.faultCorruptOutputs, true);
    // The start-up summary shows the full node's verifier and its identities, and the liar.
    const summary = devnetSummary(devnet.info);
    assert.match(summary, /verifier {3}re-executes 100% of results/);
    for (const v of devnet.info.verifiers) assert.ok(summary.includes(v), `summary lists ${v}`);
    assert.match(summary, /FAULT_CORRUPT_OUTPUTS: answers wrong on purpose/);
  });

  test("a lying worker is challenged, loses the dispute, is slashed; the verifiers are paid to the wei", async () => {
    const liar = devnet.info.workers[0]!.address;
    const verifiers = devnet.info.verifiers;
    const [disputeParams, settlementParams] = await Promise.all([
      publicClient.readContract({
        address: FIXED_ADDRESSES.settlement,
        abi: settlementAbi,
        functionName: "disputeParams",
      }),
      readSettlementParams(),
    ]);
    const treasury = settlementParams.treasury;
    const accounts = [user.address, treasury, ...verifiers];
    const creditsBefore = new Map(
      await Promise.all(accounts.map(async (a) => [a, await read.credits(a)] as const)),
    );
    const stakeBefore = (await read.node(liar)).stake;
    const balanceBefore = await publicClient.getBalance({ address: FIXED_ADDRESSES.settlement });
    await assertConserved();

    const flower = [6.7, 3.0, 5.2, 2.3];
    const sent = await client.requestInference({
      modelId: iris().modelId,
      inputs: [{ name: "input", dtype: "float32", shape: [1, 4], data: flower }],
    });
    const fee = sent.request.fee;
    const result = await client.waitForResult(sent.requestId, { timeoutMs: 60_000 });
    const honest = await irisDirect(flower);
    assert.equal(result.node, liar);
    assert.deepEqual({ output: result.output, outputHash: result.outputHash }, corruptOutput(honest));
    const honestHash = keccak256(honest);
    assert.notEqual(result.outputHash, honestHash, "the posted answer is wrong");

    // The full node re-executes, disagrees and challenges inside the window.
    const disputeId = await waitUntil(
      "a challenge",
      async () => {
        const id = await read.disputeOf(sent.requestId);
        return id === 0n ? undefined : id;
      },
      30_000,
    );
    const opened = await read.dispute(disputeId);
    assert.ok(verifiers.includes(opened.challenger), "challenged by one of the devnet verifiers");
    assert.equal(opened.accused, liar);
    assert.equal(opened.accusedHash, result.outputHash);
    assert.equal(opened.claimedHash, honestHash, "the claim is the hash an honest worker computes");
    const fulfilled = (
      await publicClient.getContractEvents({
        address: FIXED_ADDRESSES.inferenceHub,
        abi: inferenceHubAbi,
        eventName: "InferenceFulfilled",
        args: { requestId: sent.requestId },
        fromBlock: 0n,
        strict: true,
      })
    )[0]!;
    assert.ok(
      opened.openedAt < fulfilled.args.fulfilledAt + BigInt(settlementParams.challengeWindow),
      "challenged inside the challenge window",
    );

    // The committee (the three devnet verifiers) votes; the full node resolves.
    const d = await waitUntil(
      "the verdict",
      async () => {
        const x = await read.dispute(disputeId);
        return x.verdict === 0 ? undefined : x;
      },
      30_000,
    );
    assert.equal(d.verdict, VERDICT_ACCUSED_WRONG);
    assert.equal(d.majorityHash, honestHash);
    assert.deepEqual([...d.committee].sort(), [...verifiers].sort(), "the committee is the three verifiers");
    for (const member of d.committee) {
      assert.equal(
        await publicClient.readContract({
          address: FIXED_ADDRESSES.settlement,
          abi: settlementAbi,
          functionName: "voteOf",
          args: [disputeId, member],
        }),
        honestHash,
        `${member} voted the honest hash`,
      );
    }
    assert.equal(await client.requestState(sent.requestId), "Overturned");

    // The liar: slashed by slashAmount and jailed.
    const liarAfter = await read.node(liar);
    const slashed = stakeBefore < disputeParams.slashAmount ? stakeBefore : disputeParams.slashAmount;
    assert.equal(liarAfter.stake, stakeBefore - slashed);
    assert.equal(slashed, disputeParams.slashAmount);
    const now = (await publicClient.getBlock()).timestamp;
    assert.ok(liarAfter.jailedUntil > now, "jailed");
    assert.equal(
      await publicClient.readContract({
        address: FIXED_ADDRESSES.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "isActive",
        args: [liar, Roles.INFERENCE],
      }),
      false,
    );

    // Who gets what, to the wei.
    const challengerReward = (slashed * BigInt(disputeParams.challengerRewardBps)) / BPS;
    const pot = slashed - challengerReward; // nobody was absent, the bond is returned
    const each = (pot * BigInt(disputeParams.voterRewardBps)) / BPS / BigInt(d.committee.length);
    const delta = async (a: Address) => (await read.credits(a)) - creditsBefore.get(a)!;
    assert.equal(await delta(user.address), fee, "the requester's fee is refunded");
    assert.equal(
      await delta(opened.challenger),
      disputeParams.challengeBond + challengerReward + each,
      "the challenger: its bond, the challenger reward and its voter share",
    );
    for (const v of verifiers.filter((x) => x !== opened.challenger)) {
      assert.equal(await delta(v), each, `voter ${v}`);
    }
    assert.equal(await delta(treasury), pot - each * BigInt(d.committee.length), "the treasury: the rest");

    const [resolved] = await publicClient.getContractEvents({
      address: FIXED_ADDRESSES.settlement,
      abi: settlementAbi,
      eventName: "DisputeResolved",
      args: { disputeId },
      fromBlock: 0n,
      strict: true,
    });
    assert.equal(resolved!.args.slashed, slashed);
    assert.equal(resolved!.args.challengerPaid, disputeParams.challengeBond + challengerReward);
    assert.equal(resolved!.args.votersPaid, each * BigInt(d.committee.length));
    assert.equal(resolved!.args.treasuryPaid, pot - each * BigInt(d.committee.length));

    // The settlement took in the refunded fee, the slashed stake and the bond, and owes exactly
    // that to the requester, the verifiers and the treasury.
    const balanceAfter = await publicClient.getBalance({ address: FIXED_ADDRESSES.settlement });
    const paidIn = fee + slashed + disputeParams.challengeBond;
    assert.equal(balanceAfter - balanceBefore, paidIn);
    let credited = 0n;
    for (const a of accounts) credited += await delta(a);
    assert.equal(credited, paidIn, "every wei paid in is someone's credit");
    await assertConserved();

    // The full node's metrics tell the same story.
    assert.equal(await metric("gradnet_verifier_results_checked_total", '{outcome="mismatch"}'), 1);
    assert.equal(await metric("gradnet_verifier_challenges_total", '{result="opened"}'), 1);
    assert.equal(await metric("gradnet_verifier_votes_total"), 3);
    assert.equal(await metric("gradnet_verifier_disputes_resolved_total", '{verdict="AccusedWrong"}'), 1);
  });

  test("an honest answer is verified, never challenged, and finalised by the keeper", async () => {
    const liar = devnet.info.workers[0]!.address;
    await devnet.stopWorker(liar);
    const honestWorker = await devnet.addWorker();
    assert.equal(honestWorker.faultCorruptOutputs, false);
    const matchesBefore = await metric("gradnet_verifier_results_checked_total", '{outcome="match"}');

    const flower = [5.1, 3.5, 1.4, 0.2];
    const sent = await client.requestInference({
      modelId: iris().modelId,
      inputs: [{ name: "input", dtype: "float32", shape: [1, 4], data: flower }],
    });
    const result = await client.waitForResult(sent.requestId, { timeoutMs: 60_000 });
    assert.equal(result.node, honestWorker.address);
    assert.equal(result.output, await irisDirect(flower));
    await waitUntil(
      "the full node verifies the answer",
      async () =>
        (await metric("gradnet_verifier_results_checked_total", '{outcome="match"}')) > matchesBefore
          ? true
          : undefined,
      30_000,
    );
    assert.equal(await read.disputeOf(sent.requestId), 0n, "not challenged");
    assert.equal(await client.requestState(sent.requestId), "Fulfilled");

    const before = await read.credits(honestWorker.address);
    const window = (await readSettlementParams()).challengeWindow;
    await publicClient.request({
      method: "evm_increaseTime" as never,
      params: [Number(window) + 1] as never,
    });
    await publicClient.request({ method: "evm_mine" as never, params: [] as never });
    await waitUntil(
      "the keeper finalises the answer",
      async () => ((await client.requestState(sent.requestId)) === "Finalized" ? true : undefined),
      20_000,
    );
    const fee = sent.request.fee;
    const [, ownerShareBps] = await publicClient.readContract({
      address: FIXED_ADDRESSES.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "payoutOf",
      args: [iris().modelId],
    });
    const ownerShare = (fee * BigInt(ownerShareBps)) / BPS;
    const protocolShare = (fee * BigInt((await readSettlementParams()).protocolFeeBps)) / BPS;
    assert.equal((await read.credits(honestWorker.address)) - before, fee - ownerShare - protocolShare);
    assert.equal(await read.disputeOf(sent.requestId), 0n, "still never challenged");
    await assertConserved();
  });
});
