import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toUtf8Bytes, type Signer } from "ethers";
import {
  MODEL_FEE,
  MODEL_ID,
  OWNER_SHARE_BPS,
  ROLE,
  SAMPLE_INPUT,
  SAMPLE_OUTPUT,
  STATE,
  STATUS,
  TEST_PARAMS,
  deployFixture,
  encodeTensors,
  floatTensor,
  fulfillmentFromTx,
  requestFromTx,
  type Fixture,
  type RequestStruct,
} from "./helpers";

const RIGHT = SAMPLE_OUTPUT;
const RIGHT_HASH = keccak256(RIGHT);
const WRONG = encodeTensors([floatTensor("probabilities", [1n, 2n, 3n])]);
const WRONG_HASH = keccak256(WRONG);
const BPS = 10_000n;

interface RedundancyFixture extends Fixture {
  node3: Signer;
  nodesK: Signer[];
  request: RequestStruct;
}

/** Three inference nodes and a request for three answers, paid three fees. */
async function redundantFixture(): Promise<RedundancyFixture> {
  const f = await loadFixture(deployFixture);
  const node3 = f.signers[11]!;
  await f.nodes.connect(node3).register(ROLE.INFERENCE, { value: TEST_PARAMS.stake.minStakeInference });
  const request = await requestFromTx(
    f,
    await f.hub
      .connect(f.user)
      .requestInferenceRedundant(MODEL_ID, SAMPLE_INPUT, 0, 3, { value: MODEL_FEE * 3n }),
  );
  return { ...f, node3, nodesK: [f.node1, f.node2, node3], request };
}

async function answerKey(f: Fixture, status: number, hash: string): Promise<string> {
  return f.hub.answerKey(status, hash);
}

describe("Redundancy", function () {
  it("a request names how many nodes answer, and pays each of them the model's fee", async function () {
    const f = await loadFixture(redundantFixture);
    expect(f.request.redundancy).to.equal(3n);
    expect(f.request.fee).to.equal(MODEL_FEE * 3n);
    for (const k of [0, 1, 8]) {
      await expect(
        f.hub
          .connect(f.user)
          .requestInferenceRedundant(MODEL_ID, SAMPLE_INPUT, 0, k, { value: MODEL_FEE * 8n }),
      )
        .to.be.revertedWithCustomError(f.hub, "Hub__InvalidRedundancy")
        .withArgs(k, 7);
    }
    await expect(
      f.hub
        .connect(f.user)
        .requestInferenceRedundant(MODEL_ID, SAMPLE_INPUT, 0, 3, { value: MODEL_FEE * 2n }),
    )
      .to.be.revertedWithCustomError(f.hub, "Hub__FeeTooLow")
      .withArgs(MODEL_ID, MODEL_FEE * 2n, MODEL_FEE * 3n);
    const single = await requestFromTx(
      f,
      await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
    );
    expect(single.redundancy).to.equal(1n);
  });

  it("the answer a majority gives becomes the result once; a dissenter is slashed", async function () {
    const f = await loadFixture(redundantFixture);
    const [n1, n2, n3] = f.nodesK as [Signer, Signer, Signer];
    const id = f.request.requestId;
    await expect(f.hub.connect(n1).fulfill(f.request, STATUS.Success, WRONG, WRONG_HASH))
      .to.emit(f.hub, "AnswerSubmitted")
      .withArgs(id, await n1.getAddress(), STATUS.Success, WRONG_HASH, 1)
      .and.not.to.emit(f.hub, "InferenceFulfilled");
    await expect(f.hub.connect(n1).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH))
      .to.be.revertedWithCustomError(f.hub, "Hub__AlreadyAnswered")
      .withArgs(id, await n1.getAddress());
    await f.hub.connect(n2).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH);
    expect(await f.hub.requestState(id)).to.equal(STATE.Pending);
    const tx = await f.hub.connect(n3).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH);
    await expect(tx).to.emit(f.hub, "InferenceFulfilled");
    expect(await f.hub.requestState(id)).to.equal(STATE.Fulfilled);
    const a = await f.hub.agreementOf(id);
    expect(a.agreedKey).to.equal(await answerKey(f, STATUS.Success, RIGHT_HASH));
    expect(a.answers).to.equal(3n);
    expect(a.agreeing).to.equal(2n);
    // All three answered: nobody else may.
    const late = f.signers[12]!;
    await f.nodes.connect(late).register(ROLE.INFERENCE, { value: TEST_PARAMS.stake.minStakeInference });
    await expect(f.hub.connect(late).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH))
      .to.be.revertedWithCustomError(f.hub, "Hub__AnswersComplete")
      .withArgs(id);

    // The dissenter is slashed once; an agreeing node is not a dissenter.
    const n1At = await n1.getAddress();
    const treasuryBefore = await f.settlement.credits(await f.treasury.getAddress());
    await expect(f.settlement.slashDissenter(id, n1At))
      .to.emit(f.settlement, "DissenterSlashed")
      .withArgs(id, n1At, TEST_PARAMS.disputes.slashAmount);
    expect(await f.settlement.credits(await f.treasury.getAddress())).to.equal(
      treasuryBefore + TEST_PARAMS.disputes.slashAmount,
    );
    expect(await f.nodes.isActive(n1At, ROLE.INFERENCE)).to.equal(false);
    await expect(f.settlement.slashDissenter(id, n1At))
      .to.be.revertedWithCustomError(f.settlement, "Settlement__NotDissenter")
      .withArgs(id, n1At);
    await expect(f.settlement.slashDissenter(id, await n2.getAddress()))
      .to.be.revertedWithCustomError(f.settlement, "Settlement__NotDissenter")
      .withArgs(id, await n2.getAddress());

    // A redundant result is settled by agreement, not by a challenge.
    const fulfillment = await fulfillmentFromTx(f, tx, id);
    const verifier = f.signers[13]!;
    await f.nodes.connect(verifier).register(ROLE.VERIFIER, { value: TEST_PARAMS.stake.minStakeVerifier });
    await expect(
      f.settlement
        .connect(verifier)
        .challenge(f.request, fulfillment, WRONG_HASH, { value: TEST_PARAMS.disputes.challengeBond }),
    )
      .to.be.revertedWithCustomError(f.settlement, "Settlement__RedundantRequest")
      .withArgs(id);
  });

  it("agreeing nodes share the fee, late agreeing answers included", async function () {
    const f = await loadFixture(redundantFixture);
    const [n1, n2, n3] = f.nodesK as [Signer, Signer, Signer];
    const id = f.request.requestId;
    await f.hub.connect(n1).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH);
    const tx = await f.hub.connect(n2).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH);
    const fulfillment = await fulfillmentFromTx(f, tx, id);
    expect(fulfillment.node).to.equal(await n2.getAddress());
    // After agreement, the third answer is still taken (counted for pay), with no second result.
    await expect(f.hub.connect(n3).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH))
      .to.emit(f.hub, "AnswerSubmitted")
      .and.not.to.emit(f.hub, "InferenceFulfilled");
    expect((await f.hub.agreementOf(id)).agreeing).to.equal(3n);

    const addrs = await Promise.all(f.nodesK.map((n) => n.getAddress()));
    await time.increase(TEST_PARAMS.settlement.challengeWindow);
    await expect(f.settlement.finalize(f.request, fulfillment))
      .to.be.revertedWithCustomError(f.settlement, "Settlement__RedundantRequest")
      .withArgs(id);
    for (const bad of [
      addrs.slice(0, 2),
      [addrs[0]!, addrs[0]!, addrs[1]!],
      [addrs[0]!, addrs[1]!, await f.other.getAddress()],
    ]) {
      await expect(f.settlement.finalizeRedundant(f.request, fulfillment, bad))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__NotAgreeingNodes")
        .withArgs(id);
    }
    const fee = MODEL_FEE * 3n;
    const owner = (fee * BigInt(OWNER_SHARE_BPS)) / BPS;
    const protocol = (fee * BigInt(TEST_PARAMS.settlement.protocolFeeBps)) / BPS;
    const each = (fee - owner - protocol) / 3n;
    await expect(f.settlement.finalizeRedundant(f.request, fulfillment, addrs))
      .to.emit(f.settlement, "SettledRedundant")
      .withArgs(id, addrs, each, owner, protocol);
    for (const a of addrs.slice(1)) expect(await f.settlement.credits(a)).to.equal(each);
    expect(await f.settlement.credits(addrs[0]!)).to.equal(fee - owner - protocol - each * 2n);
    expect(await f.hub.requestState(id)).to.equal(STATE.Finalized);
    expect(await ethers.provider.getBalance(f.addresses.settlement)).to.equal(
      await f.settlement.totalCredits(),
    );
  });

  it("no majority among all answers refunds the requester", async function () {
    const f = await loadFixture(redundantFixture);
    const [n1, n2, n3] = f.nodesK as [Signer, Signer, Signer];
    const id = f.request.requestId;
    const third = encodeTensors([floatTensor("probabilities", [7n, 7n, 7n])]);
    await f.hub.connect(n1).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH);
    await f.hub.connect(n2).fulfill(f.request, STATUS.Success, WRONG, WRONG_HASH);
    await expect(f.hub.connect(n3).fulfill(f.request, STATUS.Success, third, keccak256(third)))
      .to.emit(f.hub, "NoAgreement")
      .withArgs(id, 3)
      .and.to.emit(f.hub, "RequestRefunded")
      .withArgs(id, await f.user.getAddress(), MODEL_FEE * 3n, STATE.Refunded);
    expect(await f.hub.requestState(id)).to.equal(STATE.Refunded);
    expect(await f.settlement.credits(await f.user.getAddress())).to.equal(MODEL_FEE * 3n);
    await expect(f.settlement.slashDissenter(id, await n1.getAddress()))
      .to.be.revertedWithCustomError(f.settlement, "Settlement__NoAgreement")
      .withArgs(id);
  });

  it("agreeing error answers end the request with a refund", async function () {
    const f = await loadFixture(redundantFixture);
    const [n1, n2] = f.nodesK as [Signer, Signer];
    const reason = toUtf8Bytes("input does not fit the schema");
    await f.hub.connect(n1).fulfill(f.request, STATUS.InvalidInput, reason, keccak256(reason));
    await expect(f.hub.connect(n2).fulfill(f.request, STATUS.InvalidInput, reason, keccak256(reason)))
      .to.emit(f.hub, "RequestRefunded")
      .withArgs(f.request.requestId, await f.user.getAddress(), MODEL_FEE * 3n, STATE.Failed);
    expect(await f.hub.requestState(f.request.requestId)).to.equal(STATE.Failed);
  });

  it("fulfillBatch skips what this node already answered and records the rest", async function () {
    const f = await loadFixture(redundantFixture);
    const [n1, n2] = f.nodesK as [Signer, Signer];
    const item = { request: f.request, status: STATUS.Success, output: RIGHT, outputHash: RIGHT_HASH };
    expect(await f.hub.connect(n1).fulfillBatch.staticCall([item, item])).to.equal(1n);
    await f.hub.connect(n1).fulfillBatch([item, item]);
    expect(await f.hub.connect(n1).fulfillBatch.staticCall([item])).to.equal(0n);
    await expect(f.hub.connect(n2).fulfillBatch([item])).to.emit(f.hub, "InferenceFulfilled");
    expect((await f.hub.agreementOf(f.request.requestId)).agreeing).to.equal(2n);
    // Past the deadline a late answer is skipped in a batch and refused alone.
    await time.increaseTo(f.request.deadline + 1n);
    const n3 = f.nodesK[2]!;
    expect(await f.hub.connect(n3).fulfillBatch.staticCall([item])).to.equal(0n);
    await expect(f.hub.connect(n3).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH))
      .to.be.revertedWithCustomError(f.hub, "Hub__RequestExpired")
      .withArgs(f.request.requestId, f.request.deadline);
  });

  it("an unanswered redundant request is refunded after its deadline", async function () {
    const f = await loadFixture(redundantFixture);
    await f.hub.connect(f.node1).fulfill(f.request, STATUS.Success, RIGHT, RIGHT_HASH);
    await time.increaseTo(f.request.deadline + 1n);
    await expect(f.hub.refundExpired(f.request))
      .to.emit(f.hub, "RequestRefunded")
      .withArgs(f.request.requestId, await f.user.getAddress(), MODEL_FEE * 3n, STATE.Refunded);
  });
});
