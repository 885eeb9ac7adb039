/**
 * Gas of the request path on the in-process Hardhat network.
 *
 *   npm run bench:gas
 *
 * Prints a table, then one JSON object as its last line. Figures are the gas used by whole
 * transactions (21,000 base and calldata included), as a dApp or node pays them.
 */
import hre from "hardhat";
import { keccak256, parseEther, toBeHex, toUtf8Bytes } from "ethers";
import type { Hex } from "viem";
import { buildBatchTree, proofFor, type BatchLeaf } from "../sdk/batch";
import {
  deployFixture,
  encodeTensors,
  floatTensor,
  requestFromTx,
  fulfillmentFromTx,
  MODEL_ID,
  MODEL_FEE,
  ROLE,
  SAMPLE_INPUT,
  STATUS,
  TEST_PARAMS,
  type RequestStruct,
} from "../test/contracts/helpers";

const BATCH = 32;
/** Results per Merkle batch (BatchSettlement.postBatch). */
const ROOT_BATCH = 1000;
/** Ritual Infernet's own gas snapshot for one request created and delivered. */
const RITUAL_INFERNET_REQUEST_AND_DELIVER = 352_544;

function output(i: number): string {
  // Three class scores, fixed-point with 6 decimals, as the demo classifier returns them.
  return encodeTensors([
    floatTensor("probabilities", [BigInt(900_000 + i), BigInt(60_000 + i), BigInt(40_000 - i)]),
  ]);
}

async function gasOf(tx: Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>): Promise<number> {
  const receipt = await (await tx).wait();
  return Number(receipt!.gasUsed);
}

async function main(): Promise<void> {
  const f = await deployFixture();
  const factory = await hre.ethers.getContractFactory("BenchConsumer");
  // Keeps the latest answer: three slots, overwritten by each answer.
  const consumer = await factory.deploy(f.addresses.inferenceHub, false);
  // Keeps every answer: three fresh slots per answer.
  const archive = await factory.deploy(f.addresses.inferenceHub, true);
  const hub = f.hub.connect(f.node1);
  const callbackGas = 150_000;

  // Warm-up: the first request ever writes the counter from zero; measure steady state.
  const warm = await requestFromTx(
    f,
    await consumer.connect(f.user).request(MODEL_ID, SAMPLE_INPUT, callbackGas, { value: MODEL_FEE }),
  );
  await hub.fulfill(warm, STATUS.Success, output(0), keccak256(output(0)));

  // One request from a consumer contract, answered with a callback that stores 3 values.
  const reqTx = consumer.connect(f.user).request(MODEL_ID, SAMPLE_INPUT, callbackGas, { value: MODEL_FEE });
  const requestGas = await gasOf(reqTx);
  const req = await requestFromTx(f, await reqTx);
  const fulTx = hub.fulfill(req, STATUS.Success, output(1), keccak256(output(1)));
  const fulfillGas = await gasOf(fulTx);
  const stored = await consumer.latest();
  if (stored.a !== 900_001n) throw new Error("callback did not store the output");

  // The same through the consumer that gives every answer fresh storage.
  const archReqTx = archive
    .connect(f.user)
    .request(MODEL_ID, SAMPLE_INPUT, callbackGas, { value: MODEL_FEE });
  const archReq = await requestFromTx(f, await archReqTx);
  const fulfillGasFreshSlots = await gasOf(
    hub.fulfill(archReq, STATUS.Success, output(3), keccak256(output(3))),
  );
  if ((await archive.results(archReq.requestId)).a !== 900_003n)
    throw new Error("archive did not store the output");

  // The same from an EOA, which reads the result from the event.
  const eoaTx = f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE });
  const eoaRequestGas = await gasOf(eoaTx);
  const eoaReq = await requestFromTx(f, await eoaTx);
  const singleFulTx = hub.fulfill(eoaReq, STATUS.Success, output(2), keccak256(output(2)));
  const singleFulfillGas = await gasOf(singleFulTx);

  // fulfillBatch of 32 EOA requests against the single form above.
  const eoaBatch: RequestStruct[] = [];
  for (let i = 0; i < BATCH; i++) {
    eoaBatch.push(
      await requestFromTx(
        f,
        await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
      ),
    );
  }
  const items = (reqs: RequestStruct[]) =>
    reqs.map((r, i) => ({
      request: r,
      status: STATUS.Success,
      output: output(i),
      outputHash: keccak256(output(i)),
    }));
  const batchTx = hub.fulfillBatch(items(eoaBatch));
  const batchGas = await gasOf(batchTx);
  const batchPerResultGas = Math.round(batchGas / BATCH);

  // fulfillBatch of 32 consumer requests, each with a callback that stores into fresh slots
  // (a shared "latest" slot would be warm after the first item and flatter the batch).
  const cbBatch: RequestStruct[] = [];
  for (let i = 0; i < BATCH; i++) {
    cbBatch.push(
      await requestFromTx(
        f,
        await archive.connect(f.user).request(MODEL_ID, SAMPLE_INPUT, callbackGas, { value: MODEL_FEE }),
      ),
    );
  }
  const cbBatchGas = await gasOf(hub.fulfillBatch(items(cbBatch), { gasLimit: 15_000_000 }));
  const batchWithCallbackPerResultGas = Math.round(cbBatchGas / BATCH);

  // Error answer (refund credited), expiry refund, settlement and withdrawal.
  const errReq = await requestFromTx(
    f,
    await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
  );
  const reason = toUtf8Bytes("input: expected shape [-1,4], got [1,3]");
  const errorFulfillGas = await gasOf(hub.fulfill(errReq, STATUS.InvalidInput, reason, keccak256(reason)));
  const lateReq = await requestFromTx(
    f,
    await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
  );
  await hre.network.provider.send("evm_increaseTime", [TEST_PARAMS.hub.requestTimeout + 1]);
  const refundGas = await gasOf(f.hub.connect(f.other).refundExpired(lateReq));

  const ful = await fulfillmentFromTx(f, await fulTx, req.requestId);
  const finalizeGas = await gasOf(f.settlement.connect(f.other).finalize(req, ful));
  const batchReceipt = await batchTx;
  const fuls = await Promise.all(eoaBatch.map((r) => fulfillmentFromTx(f, batchReceipt, r.requestId)));
  const finalizeBatchGas = await gasOf(f.settlement.connect(f.other).finalizeBatch(eoaBatch, fuls));
  const finalizeBatchPerResultGas = Math.round(finalizeBatchGas / BATCH);
  const withdrawGas = await gasOf(f.settlement.connect(f.node1).withdraw(await f.node1.getAddress()));

  // Batch settlement of off-chain results: one postBatch commits to ROOT_BATCH results with a
  // Merkle root and escrows their fee; one settleBatch pays it out. Steady state: the second of
  // each (the first writes the batch counter and the node's and treasury's credits from zero).
  const batches = f.batchSettlement;
  const payer = f.user;
  await batches.connect(payer).deposit({ value: parseEther("1") });
  await batches.connect(payer).approveNode(await f.node1.getAddress(), parseEther("1"));
  const rootFee = (MODEL_FEE * BigInt(ROOT_BATCH)) / 100n;
  const postRoot = async (offset: number) => {
    const leaves: BatchLeaf[] = Array.from({ length: ROOT_BATCH }, (_, i) => ({
      requestId: BigInt(offset + i + 1),
      inputHash: keccak256(toBeHex(offset + i, 32)) as Hex,
      outputHash: keccak256(output(offset + i)) as Hex,
    }));
    const tree = buildBatchTree(leaves);
    const gas = await gasOf(
      batches.connect(f.node1).postBatch(payer, MODEL_ID, tree.root, ROOT_BATCH, rootFee),
    );
    return { gas, tree, leaves };
  };
  await postRoot(0);
  const root = await postRoot(ROOT_BATCH);
  const rootBatchId = await batches.batchCount();
  const probe = root.leaves[ROOT_BATCH - 1]!;
  if (
    !(await batches.verifyLeaf(
      rootBatchId,
      probe.requestId,
      probe.inputHash,
      probe.outputHash,
      proofFor(root.tree, probe.requestId),
    ))
  )
    throw new Error("the contract rejected the SDK's proof");
  await hre.network.provider.send("evm_increaseTime", [TEST_PARAMS.settlement.challengeWindow + 1]);
  await batches.settleBatch(rootBatchId - 1n);
  const batchSettleGas = await gasOf(batches.connect(f.other).settleBatch(rootBatchId));
  const batchPostGas = root.gas;
  const batchRootPerResultGas = Math.round(batchPostGas / ROOT_BATCH);
  const batchSettlePerResultGas = Math.round(batchSettleGas / ROOT_BATCH);

  // Redundancy: three nodes answer one request, the fee is split among those that agree.
  const node3 = f.signers[11]!;
  await f.nodes.connect(node3).register(ROLE.INFERENCE, { value: TEST_PARAMS.stake.minStakeInference });
  const redTx = f.hub
    .connect(f.user)
    .requestInferenceRedundant(MODEL_ID, SAMPLE_INPUT, 0, 3, { value: MODEL_FEE * 3n });
  const redundantRequestGas = await gasOf(redTx);
  const redReq = await requestFromTx(f, await redTx);
  const redundantAnswerGas: number[] = [];
  let agreedTx;
  for (const [i, n] of [f.node1, f.node2, node3].entries()) {
    const tx = f.hub.connect(n).fulfill(redReq, STATUS.Success, output(9), keccak256(output(9)));
    redundantAnswerGas.push(await gasOf(tx));
    if (i === 1) agreedTx = await tx;
  }
  const redundantTotalGas = redundantRequestGas + redundantAnswerGas.reduce((a, b) => a + b, 0);
  await hre.network.provider.send("evm_increaseTime", [TEST_PARAMS.settlement.challengeWindow]);
  const redFul = await fulfillmentFromTx(f, agreedTx!, redReq.requestId);
  const answerers = await Promise.all([f.node1, f.node2, node3].map((n) => n.getAddress()));
  const finalizeRedundantGas = await gasOf(f.settlement.finalizeRedundant(redReq, redFul, answerers));

  // A dispute: challenge, committee draw, three votes, resolution that slashes the node.
  const verifiers = f.signers.slice(7, 10);
  for (const v of verifiers) {
    await f.nodes.connect(v).register(ROLE.VERIFIER, { value: TEST_PARAMS.stake.minStakeVerifier });
  }
  const dReqTx = f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE });
  const dReq = await requestFromTx(f, await dReqTx);
  const dFul = await fulfillmentFromTx(
    f,
    await hub.fulfill(dReq, STATUS.Success, output(4), keccak256(output(4))),
    dReq.requestId,
  );
  const correct = keccak256(output(5));
  const challengeGas = await gasOf(
    f.settlement
      .connect(verifiers[0]!)
      .challenge(dReq, dFul, correct, { value: TEST_PARAMS.disputes.challengeBond }),
  );
  const disputeId = await f.settlement.disputeOf(dReq.requestId);
  await hre.network.provider.send("evm_mine", []); // the seed is the next block's hash
  const drawGas = await gasOf(f.settlement.connect(f.other).drawCommittee(disputeId));
  const committee = (await f.settlement.dispute(disputeId)).committee;
  let voteGas = 0;
  for (const member of committee) {
    voteGas += await gasOf(f.settlement.connect(await hre.ethers.getSigner(member)).vote(disputeId, correct));
  }
  const resolveGas = await gasOf(f.settlement.connect(f.other).resolveChallenge(dReq, dFul));
  if ((await f.hub.requestState(dReq.requestId)) !== 7n) throw new Error("the dispute did not overturn");
  const disputeTotalGas = challengeGas + drawGas + voteGas + resolveGas;

  const totalGas = requestGas + fulfillGas;
  const result = {
    bench: "gas",
    requestGas,
    fulfillGas,
    totalGas,
    fulfillGasFreshSlots,
    totalGasFreshSlots: requestGas + fulfillGasFreshSlots,
    eoaRequestGas,
    singleFulfillGas,
    batchPerResultGas,
    batchWithCallbackPerResultGas,
    errorFulfillGas,
    refundGas,
    finalizeGas,
    finalizeBatchPerResultGas,
    withdrawGas,
    redundantRequestGas,
    redundantAnswerGas,
    redundantTotalGas,
    finalizeRedundantGas,
    challengeGas,
    drawCommitteeGas: drawGas,
    votesGas: voteGas,
    resolveGas,
    disputeTotalGas,
    batchPostGas,
    batchSettleGas,
    batchRootPerResultGas,
    batchSettlePerResultGas,
    batchSize: BATCH,
    rootBatchSize: ROOT_BATCH,
    inputBytes: (SAMPLE_INPUT.length - 2) / 2,
    outputBytes: (output(1).length - 2) / 2,
    reference: { ritualInfernetRequestAndDeliver: RITUAL_INFERNET_REQUEST_AND_DELIVER },
    ratios: {
      totalVsRitual: +(totalGas / RITUAL_INFERNET_REQUEST_AND_DELIVER).toFixed(3),
      totalFreshSlotsVsRitual: +(
        (requestGas + fulfillGasFreshSlots) /
        RITUAL_INFERNET_REQUEST_AND_DELIVER
      ).toFixed(3),
      batchPerResultVsFulfill: +(batchPerResultGas / fulfillGas).toFixed(3),
      batchPerResultVsSingle: +(batchPerResultGas / singleFulfillGas).toFixed(3),
      batchRootPerResultVsFulfillBatch: +(batchRootPerResultGas / batchPerResultGas).toFixed(4),
      batchWithCallbackVsFreshSlotsFulfill: +(batchWithCallbackPerResultGas / fulfillGasFreshSlots).toFixed(
        3,
      ),
    },
    targets: {
      totalGasAtMost200k: totalGas <= 200_000,
      batchPerResultAtMostHalfFulfill: batchPerResultGas * 2 <= fulfillGas,
    },
  };

  const rows: [string, number, string][] = [
    ["request (consumer contract, callback)", requestGas, "requestGas"],
    ["fulfil + callback storing 3 values (latest)", fulfillGas, "fulfillGas"],
    ["request + fulfil", totalGas, "totalGas"],
    ["fulfil + callback storing 3 values in fresh slots", fulfillGasFreshSlots, "fulfillGasFreshSlots"],
    ["request + fulfil, fresh slots", requestGas + fulfillGasFreshSlots, "totalGasFreshSlots"],
    ["request (EOA, no callback)", eoaRequestGas, "eoaRequestGas"],
    ["fulfil (EOA request, no callback)", singleFulfillGas, "singleFulfillGas"],
    [`fulfillBatch of ${BATCH}, per result (no callback)`, batchPerResultGas, "batchPerResultGas"],
    [
      `fulfillBatch of ${BATCH}, per result (callback, fresh slots)`,
      batchWithCallbackPerResultGas,
      "batchWithCallbackPerResultGas",
    ],
    ["fulfil with an error status (refund credited)", errorFulfillGas, "errorFulfillGas"],
    ["refundExpired", refundGas, "refundGas"],
    ["finalize (split into three credits)", finalizeGas, "finalizeGas"],
    [`finalizeBatch of ${BATCH}, per result`, finalizeBatchPerResultGas, "finalizeBatchPerResultGas"],
    ["withdraw", withdrawGas, "withdrawGas"],
    ["request, 3 answers (redundancy k=3)", redundantRequestGas, "redundantRequestGas"],
    ["k=3: request + three answers", redundantTotalGas, "redundantTotalGas"],
    ["k=3: finalizeRedundant (fee split three ways)", finalizeRedundantGas, "finalizeRedundantGas"],
    ["challenge (bond, result held)", challengeGas, "challengeGas"],
    ["drawCommittee (3 of the active verifiers)", drawGas, "drawCommitteeGas"],
    ["three votes", voteGas, "votesGas"],
    ["resolveChallenge (slash, refund, payouts)", resolveGas, "resolveGas"],
    ["dispute: challenge + draw + votes + resolve", disputeTotalGas, "disputeTotalGas"],
    [`postBatch, Merkle root of ${ROOT_BATCH} results`, batchPostGas, "batchPostGas"],
    [`settleBatch of ${ROOT_BATCH} results`, batchSettleGas, "batchSettleGas"],
    [`postBatch of ${ROOT_BATCH}, per result`, batchRootPerResultGas, "batchRootPerResultGas"],
    [`settleBatch of ${ROOT_BATCH}, per result`, batchSettlePerResultGas, "batchSettlePerResultGas"],
  ];
  for (const [label, gas] of rows) console.log(`${label.padEnd(52)} ${String(gas).padStart(9)}`);
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
