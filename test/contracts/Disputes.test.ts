import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, mine, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroHash, keccak256, toUtf8Bytes, type Signer } from "ethers";
import type { ClassifierConsumer, TestDisputeSource } from "../../typechain-types";
import {
  MODEL_FEE,
  MODEL_ID,
  ROLE,
  SAMPLE_INPUT,
  SAMPLE_OUTPUT,
  STATE,
  STATUS,
  TEST_PARAMS,
  deployFixture,
  fulfillmentFromTx,
  requestFromTx,
  type Fixture,
  type FulfillmentStruct,
  type RequestStruct,
} from "./helpers";

const P = TEST_PARAMS.disputes;
const BPS = 10_000n;
const VERDICT = { Pending: 0, AccusedRight: 1, AccusedWrong: 2, NoMajority: 3 } as const;
const WRONG_OUTPUT_HASH = keccak256(SAMPLE_OUTPUT);
const CORRECT_OUTPUT_HASH = keccak256(toUtf8Bytes("the output an honest node computes"));
const OTHER_HASH = keccak256(toUtf8Bytes("a third opinion"));

interface DisputeFixture extends Fixture {
  verifiers: Signer[];
  request: RequestStruct;
  fulfillment: FulfillmentStruct;
}

/** Four staked verifiers; a user's request answered by node1 with SAMPLE_OUTPUT. */
async function answeredFixture(): Promise<DisputeFixture> {
  const f = await loadFixture(deployFixture);
  const verifiers = f.signers.slice(7, 11);
  for (const v of verifiers) {
    await f.nodes.connect(v).register(ROLE.VERIFIER, { value: TEST_PARAMS.stake.minStakeVerifier });
  }
  const request = await requestFromTx(
    f,
    await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
  );
  const tx = await f.hub.connect(f.node1).fulfill(request, STATUS.Success, SAMPLE_OUTPUT, WRONG_OUTPUT_HASH);
  const fulfillment = await fulfillmentFromTx(f, tx, request.requestId);
  return { ...f, verifiers, request, fulfillment };
}

/** As above, with the result challenged by verifiers[0] and the committee drawn. */
async function challengedFixture() {
  const f = await loadFixture(answeredFixture);
  const challenger = f.verifiers[0]!;
  await f.settlement
    .connect(challenger)
    .challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, { value: P.challengeBond });
  const disputeId = await f.settlement.disputeOf(f.request.requestId);
  await mine(1);
  await f.settlement.drawCommittee(disputeId);
  const committee = (await f.settlement.dispute(disputeId)).committee;
  return { ...f, challenger, disputeId, committee };
}

async function conserved(f: Fixture) {
  const balance = await ethers.provider.getBalance(f.addresses.settlement);
  expect(balance, "settlement balance == credits + bonds").to.equal(
    (await f.settlement.totalCredits()) + (await f.settlement.bondsHeld()),
  );
}

describe("Disputes", function () {
  describe("challenge", function () {
    it("holds the result: the hub marks it Challenged and finalize cannot pay it out", async function () {
      const f = await loadFixture(answeredFixture);
      const challenger = f.verifiers[0]!;
      const tx = f.settlement
        .connect(challenger)
        .challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, { value: P.challengeBond });
      await expect(tx)
        .to.emit(f.settlement, "DisputeOpened")
        .and.to.emit(f.hub, "ResultChallenged")
        .withArgs(f.request.requestId, f.fulfillment.node);
      await expect(tx).to.changeEtherBalance(f.addresses.settlement, P.challengeBond);
      expect(await f.hub.requestState(f.request.requestId)).to.equal(STATE.Challenged);
      const d = await f.settlement.dispute(1);
      expect(d.challenger).to.equal(await challenger.getAddress());
      expect(d.accused).to.equal(f.fulfillment.node);
      expect(d.accusedHash).to.equal(WRONG_OUTPUT_HASH);
      expect(d.claimedHash).to.equal(CORRECT_OUTPUT_HASH);
      expect(d.verdict).to.equal(VERDICT.Pending);
      expect(await f.settlement.bondsHeld()).to.equal(P.challengeBond);
      await time.increase(TEST_PARAMS.settlement.challengeWindow + 1);
      await expect(f.settlement.finalize(f.request, f.fulfillment))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(f.request.requestId, STATE.Challenged);
      await conserved(f);
    });

    it("rejects every misuse with its own error", async function () {
      const f = await loadFixture(answeredFixture);
      const v = f.verifiers[0]!;
      const s = f.settlement.connect(v);
      const bond = { value: P.challengeBond };
      await expect(s.challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, { value: 1n }))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__WrongBond")
        .withArgs(1n, P.challengeBond);
      await expect(
        f.settlement.connect(f.other).challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, bond),
      )
        .to.be.revertedWithCustomError(f.settlement, "Settlement__NotVerifier")
        .withArgs(await f.other.getAddress());
      await expect(s.challenge(f.request, f.fulfillment, WRONG_OUTPUT_HASH, bond))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__SameHash")
        .withArgs(WRONG_OUTPUT_HASH);
      await expect(s.challenge(f.request, f.fulfillment, ZeroHash, bond)).to.be.revertedWithCustomError(
        f.settlement,
        "Settlement__ZeroHash",
      );
      await expect(
        s.challenge(f.request, { ...f.fulfillment, outputHash: OTHER_HASH }, CORRECT_OUTPUT_HASH, bond),
      )
        .to.be.revertedWithCustomError(f.hub, "Hub__CommitmentMismatch")
        .withArgs(f.request.requestId);
      await s.challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, bond);
      await expect(
        f.settlement.connect(f.verifiers[1]!).challenge(f.request, f.fulfillment, OTHER_HASH, bond),
      )
        .to.be.revertedWithCustomError(f.settlement, "Settlement__AlreadyChallenged")
        .withArgs(f.request.requestId, 1n);
    });

    it("is refused once the window has closed", async function () {
      const f = await loadFixture(answeredFixture);
      const closesAt = f.fulfillment.fulfilledAt + BigInt(TEST_PARAMS.settlement.challengeWindow);
      await time.increaseTo(closesAt);
      await expect(
        f.settlement
          .connect(f.verifiers[0]!)
          .challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, { value: P.challengeBond }),
      )
        .to.be.revertedWithCustomError(f.settlement, "Settlement__ChallengeWindowClosed")
        .withArgs(f.request.requestId, closesAt);
    });

    it("cannot touch an error answer, a pending or an unknown request", async function () {
      const f = await loadFixture(answeredFixture);
      const pending = await requestFromTx(
        f,
        await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
      );
      const now = BigInt(await time.latest());
      const fake = { node: await f.node1.getAddress(), outputHash: WRONG_OUTPUT_HASH, fulfilledAt: now };
      await expect(
        f.settlement
          .connect(f.verifiers[0]!)
          .challenge(pending, fake, CORRECT_OUTPUT_HASH, { value: P.challengeBond }),
      )
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(pending.requestId, STATE.Pending);
      await expect(
        f.settlement
          .connect(f.verifiers[0]!)
          .challenge({ ...pending, requestId: 999n }, fake, CORRECT_OUTPUT_HASH, { value: P.challengeBond }),
      )
        .to.be.revertedWithCustomError(f.hub, "Hub__UnknownRequest")
        .withArgs(999n);
      // An error answer refunds at once: there is no held fee to dispute.
      const reason = toUtf8Bytes("input does not fit the schema");
      const failed = await fulfillmentFromTx(
        f,
        await f.hub.connect(f.node1).fulfill(pending, STATUS.InvalidInput, reason, keccak256(reason)),
        pending.requestId,
      );
      await expect(
        f.settlement
          .connect(f.verifiers[0]!)
          .challenge(pending, failed, CORRECT_OUTPUT_HASH, { value: P.challengeBond }),
      )
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(pending.requestId, STATE.Failed);
    });
  });

  describe("committee", function () {
    it("is drawn after the challenge's block: distinct active verifiers, never the accused", async function () {
      const f = await loadFixture(answeredFixture);
      // The accused node is a verifier too: it must never sit on its own committee.
      await f.nodes.connect(f.node1).setRoles(ROLE.INFERENCE | ROLE.VERIFIER);
      // One verifier is jailed by falling below its minimum: not eligible.
      await f.nodes.connect(f.verifiers[3]!).startUnbonding(1n);
      await f.settlement
        .connect(f.verifiers[0]!)
        .challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, { value: P.challengeBond });
      const d = await f.settlement.dispute(1);
      await expect(f.settlement.drawCommittee(1))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__CommitteeNotDrawable")
        .withArgs(1n, d.drawBlock);
      await mine(1);
      await expect(f.settlement.drawCommittee(1)).to.emit(f.settlement, "CommitteeDrawn");
      const committee = (await f.settlement.dispute(1)).committee;
      const eligible = await Promise.all(f.verifiers.slice(0, 3).map((v) => v.getAddress()));
      expect(committee.length).to.equal(P.committeeSize);
      expect(new Set(committee).size).to.equal(committee.length);
      expect([...committee].sort()).to.deep.equal([...eligible].sort());
      expect(committee).to.not.include(await f.node1.getAddress());
      await expect(f.settlement.drawCommittee(1))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__CommitteeAlreadyDrawn")
        .withArgs(1n);
    });

    it("draws a random subset from a larger set, and different disputes draw differently", async function () {
      const f = await loadFixture(answeredFixture);
      const more = f.signers.slice(11, 19);
      for (const v of more) {
        await f.nodes.connect(v).register(ROLE.VERIFIER, { value: TEST_PARAMS.stake.minStakeVerifier });
      }
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const r = await requestFromTx(
          f,
          await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
        );
        const fl = await fulfillmentFromTx(
          f,
          await f.hub.connect(f.node2).fulfill(r, STATUS.Success, SAMPLE_OUTPUT, WRONG_OUTPUT_HASH),
          r.requestId,
        );
        await f.settlement
          .connect(f.verifiers[0]!)
          .challenge(r, fl, CORRECT_OUTPUT_HASH, { value: P.challengeBond });
        const id = await f.settlement.disputeOf(r.requestId);
        await mine(1);
        await f.settlement.drawCommittee(id);
        const committee = (await f.settlement.dispute(id)).committee;
        expect(committee.length).to.equal(P.committeeSize);
        expect(new Set(committee).size).to.equal(P.committeeSize);
        seen.add([...committee].sort().join());
      }
      expect(seen.size, "four disputes over 12 verifiers drew at least two committees").to.be.greaterThan(1);
    });
  });

  describe("votes", function () {
    it("only committee members vote, once, with a hash, before voting closes", async function () {
      const f = await loadFixture(challengedFixture);
      const members = await Promise.all(f.committee.map((a) => ethers.getSigner(a)));
      let nonMember = f.other;
      for (const v of f.verifiers) if (!f.committee.includes(await v.getAddress())) nonMember = v;
      expect(await f.nodes.isActive(await nonMember.getAddress(), ROLE.VERIFIER)).to.equal(true);
      await expect(f.settlement.connect(nonMember).vote(f.disputeId, CORRECT_OUTPUT_HASH))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__NotCommitteeMember")
        .withArgs(f.disputeId, await nonMember.getAddress());
      await expect(
        f.settlement.connect(members[0]!).vote(f.disputeId, ZeroHash),
      ).to.be.revertedWithCustomError(f.settlement, "Settlement__ZeroHash");
      await expect(f.settlement.connect(members[0]!).vote(f.disputeId, CORRECT_OUTPUT_HASH))
        .to.emit(f.settlement, "VoteCast")
        .withArgs(f.disputeId, f.committee[0], CORRECT_OUTPUT_HASH);
      expect(await f.settlement.voteOf(f.disputeId, f.committee[0]!)).to.equal(CORRECT_OUTPUT_HASH);
      await expect(f.settlement.connect(members[0]!).vote(f.disputeId, CORRECT_OUTPUT_HASH))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__AlreadyVoted")
        .withArgs(f.disputeId, f.committee[0]);
      const d = await f.settlement.dispute(f.disputeId);
      await expect(f.settlement.resolveChallenge(f.request, f.fulfillment))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__VotingOpen")
        .withArgs(f.disputeId, d.votingEndsAt);
      await time.increaseTo(d.votingEndsAt + 1n);
      await expect(f.settlement.connect(members[1]!).vote(f.disputeId, CORRECT_OUTPUT_HASH))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__VotingClosed")
        .withArgs(f.disputeId, d.votingEndsAt);
      await expect(f.settlement.vote(99, CORRECT_OUTPUT_HASH))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__UnknownDispute")
        .withArgs(99n);
    });

    it("a first vote draws the committee when nobody has", async function () {
      const f = await loadFixture(answeredFixture);
      await f.settlement
        .connect(f.verifiers[0]!)
        .challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, { value: P.challengeBond });
      await mine(1);
      // With four eligible verifiers and a committee of three, the challenger may or may not sit.
      let voted = false;
      for (const v of f.verifiers) {
        try {
          await f.settlement.connect(v).vote(1, CORRECT_OUTPUT_HASH);
          voted = true;
          break;
        } catch {
          // not on the committee
        }
      }
      expect(voted).to.equal(true);
      expect((await f.settlement.dispute(1)).committee.length).to.equal(P.committeeSize);
    });
  });

  describe("resolution", function () {
    it("a wrong node is slashed and jailed, the requester refunded, challenger and voters paid", async function () {
      const f = await loadFixture(challengedFixture);
      for (const a of f.committee) {
        await f.settlement.connect(await ethers.getSigner(a)).vote(f.disputeId, CORRECT_OUTPUT_HASH);
      }
      const node = f.fulfillment.node;
      const stakeBefore = await f.nodes.stakeOf(node);
      const challengerAt = await f.challenger.getAddress();
      const treasuryAt = await f.treasury.getAddress();
      const userAt = await f.user.getAddress();
      const before = await Promise.all(
        [challengerAt, treasuryAt, userAt, ...f.committee].map((a) => f.settlement.credits(a)),
      );
      // Everyone voted: no need to wait for the end of voting.
      const tx = f.settlement.resolveChallenge(f.request, f.fulfillment);
      const slashed = P.slashAmount;
      const reward = (slashed * BigInt(P.challengerRewardBps)) / BPS;
      const pot = slashed - reward;
      const each = (pot * BigInt(P.voterRewardBps)) / BPS / BigInt(f.committee.length);
      const voters = each * BigInt(f.committee.length);
      await expect(tx)
        .to.emit(f.settlement, "DisputeResolved")
        .withArgs(
          f.disputeId,
          VERDICT.AccusedWrong,
          CORRECT_OUTPUT_HASH,
          slashed,
          reward + P.challengeBond,
          voters,
          pot - voters,
        );
      await expect(tx)
        .to.emit(f.hub, "InferenceOverturned")
        .withArgs(f.request.requestId, node, WRONG_OUTPUT_HASH, CORRECT_OUTPUT_HASH, 0);
      await expect(tx).to.emit(f.nodes, "NodeSlashed");
      expect(await f.hub.requestState(f.request.requestId)).to.equal(STATE.Overturned);
      expect(await f.nodes.stakeOf(node)).to.equal(stakeBefore - slashed);
      expect(await f.nodes.isActive(node, ROLE.INFERENCE)).to.equal(false);
      const after = await Promise.all(
        [challengerAt, treasuryAt, userAt, ...f.committee].map((a) => f.settlement.credits(a)),
      );
      const gained = after.map((a, i) => a - before[i]!);
      // A challenger on the committee is paid both ways.
      const onCommittee = f.committee.includes(challengerAt) ? each : 0n;
      expect(gained[0]).to.equal(reward + P.challengeBond + onCommittee);
      expect(gained[1]).to.equal(pot - voters);
      expect(gained[2]).to.equal(MODEL_FEE);
      for (let i = 0; i < f.committee.length; i++) {
        if (f.committee[i] !== challengerAt) expect(gained[3 + i]).to.equal(each);
      }
      expect(await f.settlement.bondsHeld()).to.equal(0n);
      await conserved(f);
      // A dispute ends once, and the result can no longer be finalised.
      await expect(f.settlement.resolveChallenge(f.request, f.fulfillment))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__DisputeEnded")
        .withArgs(f.disputeId, VERDICT.AccusedWrong);
      await time.increase(TEST_PARAMS.settlement.challengeWindow);
      await expect(f.settlement.finalize(f.request, f.fulfillment))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(f.request.requestId, STATE.Overturned);
    });

    it("a wrong challenger loses its bond to the voters and the treasury; the node is paid as usual", async function () {
      const f = await loadFixture(challengedFixture);
      for (const a of f.committee) {
        await f.settlement.connect(await ethers.getSigner(a)).vote(f.disputeId, WRONG_OUTPUT_HASH);
      }
      const tx = f.settlement.resolveChallenge(f.request, f.fulfillment);
      const each = (P.challengeBond * BigInt(P.voterRewardBps)) / BPS / BigInt(f.committee.length);
      const voters = each * BigInt(f.committee.length);
      await expect(tx)
        .to.emit(f.settlement, "DisputeResolved")
        .withArgs(
          f.disputeId,
          VERDICT.AccusedRight,
          WRONG_OUTPUT_HASH,
          0,
          0,
          voters,
          P.challengeBond - voters,
        );
      await expect(tx).to.emit(f.hub, "ChallengeCleared").withArgs(f.request.requestId);
      await expect(tx).to.not.emit(f.nodes, "NodeSlashed");
      expect(await f.hub.requestState(f.request.requestId)).to.equal(STATE.Fulfilled);
      await conserved(f);
      await time.increase(TEST_PARAMS.settlement.challengeWindow);
      await expect(f.settlement.finalize(f.request, f.fulfillment)).to.emit(f.settlement, "Settled");
      await conserved(f);
    });

    it("without a majority nobody is slashed but the absent voters, and the bond comes back", async function () {
      const f = await loadFixture(challengedFixture);
      const [a, b] = f.committee;
      await f.settlement.connect(await ethers.getSigner(a!)).vote(f.disputeId, CORRECT_OUTPUT_HASH);
      await f.settlement.connect(await ethers.getSigner(b!)).vote(f.disputeId, OTHER_HASH);
      const absent = f.committee[2]!;
      const absentStake = await f.nodes.stakeOf(absent);
      const d = await f.settlement.dispute(f.disputeId);
      await time.increaseTo(d.votingEndsAt + 1n);
      const tx = f.settlement.resolveChallenge(f.request, f.fulfillment);
      await expect(tx)
        .to.emit(f.settlement, "DisputeResolved")
        .withArgs(f.disputeId, VERDICT.NoMajority, ZeroHash, 0, P.challengeBond, 0, P.absentPenalty);
      await expect(tx).to.emit(f.settlement, "VoterPenalized").withArgs(f.disputeId, absent, P.absentPenalty);
      expect(await f.nodes.stakeOf(absent)).to.equal(absentStake - P.absentPenalty);
      // A missed vote costs stake, not the right to work: no jail.
      expect((await f.nodes.nodeInfo(absent)).jailedUntil).to.equal(0n);
      expect(await f.hub.requestState(f.request.requestId)).to.equal(STATE.Fulfilled);
      await conserved(f);
    });

    it("a dispute nobody drew or voted on still ends, after voting closes", async function () {
      const f = await loadFixture(answeredFixture);
      await f.settlement
        .connect(f.verifiers[0]!)
        .challenge(f.request, f.fulfillment, CORRECT_OUTPUT_HASH, { value: P.challengeBond });
      const d = await f.settlement.dispute(1);
      await time.increaseTo(d.votingEndsAt + 1n);
      await expect(f.settlement.drawCommittee(1))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__VotingClosed")
        .withArgs(1n, d.votingEndsAt);
      await expect(f.settlement.resolveChallenge(f.request, f.fulfillment))
        .to.emit(f.settlement, "DisputeResolved")
        .withArgs(1n, VERDICT.NoMajority, ZeroHash, 0, P.challengeBond, 0, 0);
      expect(await f.hub.requestState(f.request.requestId)).to.equal(STATE.Fulfilled);
      await conserved(f);
    });

    it("resolveChallenge needs a challenged request and its real fulfilment", async function () {
      const f = await loadFixture(challengedFixture);
      await expect(f.settlement.resolveChallenge({ ...f.request, requestId: 5n }, f.fulfillment))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__NotChallenged")
        .withArgs(5n);
      for (const a of f.committee) {
        await f.settlement.connect(await ethers.getSigner(a)).vote(f.disputeId, CORRECT_OUTPUT_HASH);
      }
      await expect(
        f.settlement.resolveChallenge(f.request, { ...f.fulfillment, outputHash: CORRECT_OUTPUT_HASH }),
      )
        .to.be.revertedWithCustomError(f.hub, "Hub__CommitmentMismatch")
        .withArgs(f.request.requestId);
      await expect(f.settlement.resolveDispute(f.disputeId))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__WrongSubject")
        .withArgs(f.disputeId);
    });

    it("a consumer that opted in is told its answer was overturned", async function () {
      const f = await loadFixture(answeredFixture);
      const consumer = (await (
        await ethers.getContractFactory("ClassifierConsumer", f.user)
      ).deploy(f.addresses.inferenceHub, MODEL_ID, "probabilities")) as unknown as ClassifierConsumer;
      const reqTx = await consumer.classify([5_100000n, 3_500000n, 1_400000n, 200000n], 6, {
        value: MODEL_FEE,
      });
      const request = await requestFromTx(f, reqTx);
      const ful = await fulfillmentFromTx(
        f,
        await f.hub.connect(f.node1).fulfill(request, STATUS.Success, SAMPLE_OUTPUT, WRONG_OUTPUT_HASH),
        request.requestId,
      );
      expect((await consumer.classifications(request.requestId)).answered).to.equal(true);
      await f.settlement
        .connect(f.verifiers[0]!)
        .challenge(request, ful, CORRECT_OUTPUT_HASH, { value: P.challengeBond });
      const id = await f.settlement.disputeOf(request.requestId);
      await mine(1);
      await f.settlement.drawCommittee(id);
      for (const a of (await f.settlement.dispute(id)).committee) {
        await f.settlement.connect(await ethers.getSigner(a)).vote(id, CORRECT_OUTPUT_HASH);
      }
      const tx = f.settlement.resolveChallenge(request, ful);
      await expect(tx)
        .to.emit(consumer, "ClassificationOverturned")
        .withArgs(request.requestId, WRONG_OUTPUT_HASH, CORRECT_OUTPUT_HASH);
      await expect(tx)
        .to.emit(f.hub, "InferenceOverturned")
        .withArgs(request.requestId, ful.node, WRONG_OUTPUT_HASH, CORRECT_OUTPUT_HASH, 1);
      const c = await consumer.classifications(request.requestId);
      expect(c.overturned).to.equal(true);
      expect(await f.settlement.credits(await consumer.getAddress())).to.equal(MODEL_FEE);
      await conserved(f);
    });
  });

  describe("dispute sources", function () {
    async function sourceFixture() {
      const f = await loadFixture(answeredFixture);
      const source = (await (
        await ethers.getContractFactory("TestDisputeSource", f.other)
      ).deploy(f.addresses.settlement)) as unknown as TestDisputeSource;
      return { ...f, source };
    }

    it("only registered sources open disputes, and hear the verdict once", async function () {
      const f = await loadFixture(sourceFixture);
      const sourceAt = await f.source.getAddress();
      const accused = await f.node2.getAddress();
      const v = f.verifiers[0]!;
      await expect(
        f.source
          .connect(v)
          .open(7, accused, WRONG_OUTPUT_HASH, CORRECT_OUTPUT_HASH, { value: P.challengeBond }),
      )
        .to.be.revertedWithCustomError(f.settlement, "Settlement__NotDisputeSource")
        .withArgs(sourceAt);
      await expect(f.settlement.connect(f.other).setDisputeSource(sourceAt, true))
        .to.be.revertedWithCustomError(f.settlement, "OwnableUnauthorizedAccount")
        .withArgs(await f.other.getAddress());
      await expect(f.settlement.connect(f.owner).setDisputeSource(sourceAt, true))
        .to.emit(f.settlement, "DisputeSourceChanged")
        .withArgs(sourceAt, true);
      await f.source
        .connect(v)
        .open(7, accused, WRONG_OUTPUT_HASH, CORRECT_OUTPUT_HASH, { value: P.challengeBond });
      const d = await f.settlement.dispute(1);
      expect(d.source).to.equal(sourceAt);
      expect(d.subjectId).to.equal(7n);
      expect(d.challenger).to.equal(await v.getAddress());
      await mine(1);
      await f.settlement.drawCommittee(1);
      for (const a of (await f.settlement.dispute(1)).committee) {
        await f.settlement.connect(await ethers.getSigner(a)).vote(1, CORRECT_OUTPUT_HASH);
      }
      const reward = (P.slashAmount * BigInt(P.challengerRewardBps)) / BPS;
      const pot = P.slashAmount - reward;
      const voters = ((pot * BigInt(P.voterRewardBps)) / BPS / 3n) * 3n;
      await expect(f.settlement.resolveDispute(1))
        .to.emit(f.settlement, "DisputeResolved")
        .withArgs(
          1n,
          VERDICT.AccusedWrong,
          CORRECT_OUTPUT_HASH,
          P.slashAmount,
          reward + P.challengeBond,
          voters,
          pot - voters,
        );
      expect(await f.source.verdicts(7)).to.equal(VERDICT.AccusedWrong);
      expect(await f.source.calls()).to.equal(1n);
      await expect(f.settlement.resolveDispute(1)).to.be.revertedWithCustomError(
        f.settlement,
        "Settlement__DisputeEnded",
      );
      await conserved(f);
    });
  });

  describe("parameters", function () {
    it("governance sets dispute terms within bounds", async function () {
      const f = await loadFixture(answeredFixture);
      const ok = { ...P, committeeSize: 5 };
      await expect(f.settlement.connect(f.other).setDisputeParams(ok)).to.be.revertedWithCustomError(
        f.settlement,
        "OwnableUnauthorizedAccount",
      );
      await expect(f.settlement.connect(f.owner).setDisputeParams(ok)).to.emit(
        f.settlement,
        "DisputeParamsChanged",
      );
      expect((await f.settlement.disputeParams()).committeeSize).to.equal(5n);
      for (const bad of [
        { ...P, challengeBond: 0n },
        { ...P, committeeSize: 0 },
        { ...P, committeeSize: 16 },
        { ...P, challengerRewardBps: 10_001 },
        { ...P, voterRewardBps: 10_001 },
        { ...P, votingPeriod: 0 },
      ]) {
        await expect(f.settlement.connect(f.owner).setDisputeParams(bad)).to.be.revertedWithCustomError(
          f.settlement,
          "Settlement__InvalidParams",
        );
      }
      expect(await f.settlement.challengeBond()).to.equal(P.challengeBond);
    });
  });
});
