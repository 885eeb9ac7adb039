import { expect } from "chai";
import fc from "fast-check";
import hre, { ethers } from "hardhat";
import { loadFixture, mine, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import {
  MaxUint256,
  ZeroAddress,
  ZeroHash,
  keccak256,
  parseEther,
  toBeHex,
  toUtf8Bytes,
  type Signer,
} from "ethers";
import type { Hex } from "viem";
import { DEVNET_PARAMS, FIXED_ADDRESSES } from "../../deploy/config";
import { batchLeaf, buildBatchTree, proofFor, verifyBatchProof, type BatchLeaf } from "../../sdk";
import { MODEL_ID, ROLE, deployFixture, type Fixture } from "./helpers";

const WINDOW = BigInt(DEVNET_PARAMS.settlement.challengeWindow); // 60 s
const PROTOCOL_FEE_BPS = BigInt(DEVNET_PARAMS.settlement.protocolFeeBps); // 5%
const BATCH_STATE = { None: 0, Posted: 1, Challenged: 2, Settled: 3, Voided: 4 } as const;
const UINT96_MAX = (1n << 96n) - 1n;

const DEPOSIT = parseEther("1");
// A fee with dust: 5% to the treasury rounds down, the node gets the rest.
const FEE = parseEther("0.1") + 1_234n;
const PROTOCOL_AMOUNT = (FEE * PROTOCOL_FEE_BPS) / 10_000n;
const NODE_AMOUNT = FEE - PROTOCOL_AMOUNT;

const h = (n: number | bigint): Hex => toBeHex(n, 32) as Hex;

/** `n` results with distinct ids, input and output hashes. */
function results(n: number, offset = 0): BatchLeaf[] {
  return Array.from({ length: n }, (_, i) => ({
    requestId: BigInt(offset + i + 1) * 7919n,
    inputHash: keccak256(h(offset + i)) as Hex,
    outputHash: keccak256(h(1_000_000 + offset + i)) as Hex,
  }));
}

/** The ids of the accounts every test uses. */
async function accounts(f: Fixture) {
  return {
    payer: await f.user.getAddress(),
    node: await f.node1.getAddress(),
    node2: await f.node2.getAddress(),
    treasury: await f.treasury.getAddress(),
    other: await f.other.getAddress(),
  };
}

/** The fixture, with the payer (`user`) holding DEPOSIT and node1 allowed up to 10 × FEE. */
async function fundedFixture() {
  const f = await loadFixture(deployFixture);
  const a = await accounts(f);
  await f.batchSettlement.connect(f.user).deposit({ value: DEPOSIT });
  await f.batchSettlement.connect(f.user).approveNode(a.node, FEE * 10n);
  return { f, a };
}

/** As above, plus one batch of 5 results posted by node1 for the payer at a pinned time. */
async function postedFixture() {
  const { f, a } = await fundedFixture();
  const leaves = results(5);
  const tree = buildBatchTree(leaves);
  const postedAt = BigInt(await time.latest()) + 10n;
  await time.setNextBlockTimestamp(postedAt);
  await f.batchSettlement.connect(f.node1).postBatch(a.payer, MODEL_ID, tree.root, leaves.length, FEE);
  return { f, a, leaves, tree, postedAt, batchId: 1n };
}

/** The money invariant, and that it adds up over the accounts and batches the test knows. */
async function checkInvariants(f: Fixture, payers: string[], earners: string[]): Promise<void> {
  const b = f.batchSettlement;
  const [deposits, escrow, credits] = [
    await b.totalDeposits(),
    await b.totalEscrow(),
    await b.totalCredits(),
  ];
  expect(await ethers.provider.getBalance(await b.getAddress())).to.equal(
    deposits + escrow + credits,
    "balance == deposits + escrow + credits",
  );
  let sumDeposits = 0n;
  for (const p of payers) sumDeposits += await b.depositOf(p);
  expect(sumDeposits).to.equal(deposits, "sum of deposits");
  let sumCredits = 0n;
  for (const e of earners) sumCredits += await b.credits(e);
  expect(sumCredits).to.equal(credits, "sum of credits");
  let sumEscrow = 0n;
  for (let id = 1n; id <= (await b.batchCount()); id++) {
    const batch = await b.batch(id);
    if (batch.state === BigInt(BATCH_STATE.Posted) || batch.state === BigInt(BATCH_STATE.Challenged))
      sumEscrow += batch.fee;
  }
  expect(sumEscrow).to.equal(escrow, "sum of open batches' fees");
}

describe("BatchSettlement", function () {
  describe("deployment", function () {
    it("sits at its fixed address, wired to the node registry and Settlement", async function () {
      const f = await loadFixture(deployFixture);
      expect(f.addresses.batchSettlement).to.equal(FIXED_ADDRESSES.batchSettlement);
      expect(FIXED_ADDRESSES.batchSettlement.toLowerCase()).to.equal(
        "0x0000000000000000000000000000000000000f15",
      );
      const b = f.batchSettlement;
      expect(await b.nodeRegistry()).to.equal(FIXED_ADDRESSES.nodeRegistry);
      expect(await b.settlement()).to.equal(FIXED_ADDRESSES.settlement);
      expect(await b.owner()).to.equal(await f.owner.getAddress());
      expect(await b.batchCount()).to.equal(0n);
      await expect(b.initialize(await f.owner.getAddress())).to.be.revertedWithCustomError(
        b,
        "InvalidInitialization",
      );
    });

    it("refuses zero wiring addresses", async function () {
      const factory = await ethers.getContractFactory("BatchSettlement");
      await expect(factory.deploy(ZeroAddress, FIXED_ADDRESSES.settlement)).to.be.revertedWithCustomError(
        factory,
        "System__ZeroAddress",
      );
      await expect(factory.deploy(FIXED_ADDRESSES.nodeRegistry, ZeroAddress)).to.be.revertedWithCustomError(
        factory,
        "System__ZeroAddress",
      );
    });
  });

  describe("deposits and allowances", function () {
    it("deposit adds to the payer's balance; withdraw takes back what is not escrowed", async function () {
      const f = await loadFixture(deployFixture);
      const { payer, node } = await accounts(f);
      const b = f.batchSettlement.connect(f.user);
      await expect(b.deposit({ value: 300n }))
        .to.emit(b, "Deposited")
        .withArgs(payer, 300n, 300n);
      await expect(b.deposit({ value: 200n }))
        .to.emit(b, "Deposited")
        .withArgs(payer, 200n, 500n);
      expect(await b.depositOf(payer)).to.equal(500n);
      expect(await b.totalDeposits()).to.equal(500n);

      const tx = b.withdraw(120n);
      await expect(tx).to.emit(b, "DepositWithdrawn").withArgs(payer, 120n, 380n);
      await expect(tx).to.changeEtherBalances([f.user, b], [120n, -120n]);
      await expect(b.withdraw(381n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__InsufficientDeposit")
        .withArgs(payer, 380n, 381n);

      // Escrowed fees cannot be withdrawn.
      await b.approveNode(node, 1000n);
      await f.batchSettlement.connect(f.node1).postBatch(payer, MODEL_ID, h(1), 1, 300n);
      await expect(b.withdraw(81n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__InsufficientDeposit")
        .withArgs(payer, 80n, 81n);
      await expect(b.withdraw(80n)).to.changeEtherBalances([f.user, b], [80n, -80n]);
      expect(await b.depositOf(payer)).to.equal(0n);
      await checkInvariants(f, [payer], []);
    });

    it("zero deposits and withdrawals revert ZeroAmount", async function () {
      const f = await loadFixture(deployFixture);
      const b = f.batchSettlement.connect(f.user);
      await expect(b.deposit()).to.be.revertedWithCustomError(b, "BatchSettlement__ZeroAmount");
      await expect(b.withdraw(0)).to.be.revertedWithCustomError(b, "BatchSettlement__ZeroAmount");
    });

    it("a withdrawal the payer cannot receive reverts TransferFailed and keeps the deposit", async function () {
      const f = await loadFixture(deployFixture);
      const b = f.batchSettlement;
      // A payer contract that refuses plain transfers (impersonated to send its own calls).
      const receiver = await (await ethers.getContractFactory("RejectingReceiver")).deploy();
      const address = await receiver.getAddress();
      await hre.network.provider.send("hardhat_setBalance", [address, toBeHex(parseEther("1"))]);
      const asReceiver = await ethers.getImpersonatedSigner(address);
      await b.connect(asReceiver).deposit({ value: 500n });
      await expect(b.connect(asReceiver).withdraw(200n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__TransferFailed")
        .withArgs(address, 200n);
      expect(await b.depositOf(address)).to.equal(500n);
      await checkInvariants(f, [address], []);
    });

    it("approveNode sets, replaces and clears an allowance", async function () {
      const f = await loadFixture(deployFixture);
      const { payer, node, node2 } = await accounts(f);
      const b = f.batchSettlement.connect(f.user);
      await expect(b.approveNode(node, 700n)).to.emit(b, "NodeApproved").withArgs(payer, node, 700n);
      await expect(b.approveNode(node, 50n)).to.emit(b, "NodeApproved").withArgs(payer, node, 50n);
      expect(await b.allowance(payer, node)).to.equal(50n);
      expect(await b.allowance(payer, node2)).to.equal(0n);
      await b.approveNode(node, 0n);
      expect(await b.allowance(payer, node)).to.equal(0n);
      await expect(b.approveNode(ZeroAddress, 1n)).to.be.revertedWithCustomError(b, "System__ZeroAddress");
    });
  });

  describe("postBatch", function () {
    it("escrows the fee from the deposit, lowers the allowance and stores the batch", async function () {
      const { f, a } = await fundedFixture();
      const b = f.batchSettlement;
      const tree = buildBatchTree(results(1000));
      const at = BigInt(await time.latest()) + 5n;
      await time.setNextBlockTimestamp(at);
      const tx = b.connect(f.node1).postBatch(a.payer, MODEL_ID, tree.root, 1000, FEE);
      await expect(tx)
        .to.emit(b, "BatchPosted")
        .withArgs(1n, a.node, a.payer, MODEL_ID, tree.root, 1000, FEE);
      await expect(tx).to.changeEtherBalances([b, f.user, f.node1], [0n, 0n, 0n]);
      expect(await b.batchCount()).to.equal(1n);
      const batch = await b.batch(1n);
      expect(batch.root).to.equal(tree.root);
      expect(batch.node).to.equal(a.node);
      expect(batch.payer).to.equal(a.payer);
      expect(batch.postedAt).to.equal(at);
      expect(batch.leafCount).to.equal(1000n);
      expect(batch.state).to.equal(BATCH_STATE.Posted);
      expect(batch.fee).to.equal(FEE);
      expect(await b.depositOf(a.payer)).to.equal(DEPOSIT - FEE);
      expect(await b.allowance(a.payer, a.node)).to.equal(FEE * 9n);
      expect(await b.totalEscrow()).to.equal(FEE);
      expect(await b.settleableAt(1n)).to.equal(at + WINDOW);
      await checkInvariants(f, [a.payer], []);
    });

    it("an unlimited allowance (type(uint256).max) is not lowered", async function () {
      const { f, a } = await fundedFixture();
      const b = f.batchSettlement;
      await b.connect(f.user).approveNode(a.node2, MaxUint256);
      await b.connect(f.node2).postBatch(a.payer, MODEL_ID, h(9), 3, FEE);
      await b.connect(f.node2).postBatch(a.payer, MODEL_ID, h(10), 3, FEE);
      expect(await b.allowance(a.payer, a.node2)).to.equal(MaxUint256);
      expect(await b.depositOf(a.payer)).to.equal(DEPOSIT - 2n * FEE);
    });

    it("reverts for anyone but an active inference node", async function () {
      const { f, a } = await fundedFixture();
      const b = f.batchSettlement;
      await b.connect(f.user).approveNode(a.other, MaxUint256);
      await expect(b.connect(f.other).postBatch(a.payer, MODEL_ID, h(1), 1, 1n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__NotInferenceNode")
        .withArgs(a.other);
      // A registered verifier without the INFERENCE role is refused too.
      const [, , , , , , , verifier] = await ethers.getSigners();
      await f.nodes.connect(verifier!).register(2, { value: DEVNET_PARAMS.stake.minStakeVerifier });
      await expect(b.connect(verifier!).postBatch(a.payer, MODEL_ID, h(1), 1, 1n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__NotInferenceNode")
        .withArgs(verifier!.address);
    });

    it("refuses an empty root, model, batch or fee, and a fee over uint96", async function () {
      const { f, a } = await fundedFixture();
      const b = f.batchSettlement.connect(f.node1);
      await expect(b.postBatch(a.payer, MODEL_ID, ZeroHash, 1, FEE)).to.be.revertedWithCustomError(
        b,
        "BatchSettlement__ZeroRoot",
      );
      await expect(b.postBatch(a.payer, ZeroHash, h(1), 1, FEE)).to.be.revertedWithCustomError(
        b,
        "BatchSettlement__ZeroModelId",
      );
      await expect(b.postBatch(a.payer, MODEL_ID, h(1), 0, FEE)).to.be.revertedWithCustomError(
        b,
        "BatchSettlement__EmptyBatch",
      );
      await expect(b.postBatch(a.payer, MODEL_ID, h(1), 1, 0)).to.be.revertedWithCustomError(
        b,
        "BatchSettlement__ZeroAmount",
      );
      await expect(b.postBatch(a.payer, MODEL_ID, h(1), 1, UINT96_MAX + 1n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__FeeTooLarge")
        .withArgs(UINT96_MAX + 1n);
    });

    it("reverts AllowanceExceeded past the allowance and InsufficientDeposit past the deposit", async function () {
      const { f, a } = await fundedFixture();
      const b = f.batchSettlement;
      await expect(b.connect(f.node2).postBatch(a.payer, MODEL_ID, h(1), 1, 1n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__AllowanceExceeded")
        .withArgs(a.payer, a.node2, 0n, 1n);
      await expect(b.connect(f.node1).postBatch(a.payer, MODEL_ID, h(1), 1, FEE * 10n + 1n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__AllowanceExceeded")
        .withArgs(a.payer, a.node, FEE * 10n, FEE * 10n + 1n);
      await b.connect(f.user).approveNode(a.node, MaxUint256);
      await expect(b.connect(f.node1).postBatch(a.payer, MODEL_ID, h(1), 1, DEPOSIT + 1n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__InsufficientDeposit")
        .withArgs(a.payer, DEPOSIT, DEPOSIT + 1n);
      // The whole deposit can be escrowed.
      await b.connect(f.node1).postBatch(a.payer, MODEL_ID, h(1), 1, DEPOSIT);
      expect(await b.depositOf(a.payer)).to.equal(0n);
      await checkInvariants(f, [a.payer], []);
    });
  });

  describe("verifyLeaf", function () {
    it("agrees with the SDK: every leaf of a 1,000-result batch verifies with its SDK proof", async function () {
      const { f, a } = await fundedFixture();
      const b = f.batchSettlement;
      const leaves = results(1000);
      const tree = buildBatchTree(leaves);
      await b.connect(f.node1).postBatch(a.payer, MODEL_ID, tree.root, leaves.length, FEE);
      for (const leaf of leaves.filter((_, i) => i % 97 === 0 || i === 999)) {
        const proof = proofFor(tree, leaf.requestId);
        expect(proof.length).to.be.within(9, 10);
        expect(await b.leafHash(leaf.requestId, leaf.inputHash, leaf.outputHash)).to.equal(batchLeaf(leaf));
        expect(await b.verifyLeaf(1n, leaf.requestId, leaf.inputHash, leaf.outputHash, proof)).to.equal(true);
        expect(verifyBatchProof(tree.root as Hex, leaf, proof)).to.equal(true);
      }
    });

    it("rejects forged proofs and leaves that are not in the batch", async function () {
      const { f, leaves, tree } = await loadFixture(postedFixture);
      const b = f.batchSettlement;
      const leaf = leaves[2]!;
      const proof = proofFor(tree, leaf.requestId);
      const verify = (l: BatchLeaf, p: string[], batchId = 1n) =>
        b.verifyLeaf(batchId, l.requestId, l.inputHash, l.outputHash, p);
      expect(await verify(leaf, proof)).to.equal(true);
      // Another output, input or request id for the same proof.
      expect(await verify({ ...leaf, outputHash: h(7) }, proof)).to.equal(false);
      expect(await verify({ ...leaf, inputHash: h(7) }, proof)).to.equal(false);
      expect(await verify({ ...leaf, requestId: leaf.requestId + 1n }, proof)).to.equal(false);
      // Another leaf's proof, a truncated or extended proof, no proof.
      expect(await verify(leaf, proofFor(tree, leaves[3]!.requestId))).to.equal(false);
      expect(await verify(leaf, proof.slice(1))).to.equal(false);
      expect(await verify(leaf, [...proof, h(1)])).to.equal(false);
      expect(await verify(leaf, [])).to.equal(false);
      // A leaf with a valid proof in another batch's tree.
      const other = buildBatchTree(results(5, 100));
      const foreign = results(5, 100)[0]!;
      expect(await verify(foreign, proofFor(other, foreign.requestId))).to.equal(false);
      // An unknown batch verifies nothing, not even against a zero root.
      expect(await verify(leaf, proof, 2n)).to.equal(false);
      expect(await verify(leaf, [], 0n)).to.equal(false);
    });
  });

  describe("settleBatch", function () {
    it("reverts ChallengeWindowOpen until postedAt + window, then credits node and treasury", async function () {
      const { f, a, postedAt, batchId } = await loadFixture(postedFixture);
      const b = f.batchSettlement;
      const at = postedAt + WINDOW;
      await expect(b.settleBatch(batchId))
        .to.be.revertedWithCustomError(b, "BatchSettlement__ChallengeWindowOpen")
        .withArgs(batchId, at);
      await time.setNextBlockTimestamp(at - 1n);
      await expect(b.settleBatch(batchId, { gasLimit: 300_000 }))
        .to.be.revertedWithCustomError(b, "BatchSettlement__ChallengeWindowOpen")
        .withArgs(batchId, at);
      await time.setNextBlockTimestamp(at);
      // Anyone may settle.
      const tx = b.connect(f.other).settleBatch(batchId);
      await expect(tx).to.emit(b, "BatchSettled").withArgs(batchId, a.node, NODE_AMOUNT, PROTOCOL_AMOUNT);
      await expect(tx).to.changeEtherBalances([b, f.other], [0n, 0n]);
      expect(NODE_AMOUNT + PROTOCOL_AMOUNT).to.equal(FEE);
      expect(await b.credits(a.node)).to.equal(NODE_AMOUNT);
      expect(await b.credits(a.treasury)).to.equal(PROTOCOL_AMOUNT);
      expect(await b.totalEscrow()).to.equal(0n);
      expect(await b.totalCredits()).to.equal(FEE);
      expect((await b.batch(batchId)).state).to.equal(BATCH_STATE.Settled);
      await checkInvariants(f, [a.payer], [a.node, a.treasury]);
    });

    it("a settled batch cannot settle again; an unknown batch cannot settle", async function () {
      const { f, batchId } = await loadFixture(postedFixture);
      const b = f.batchSettlement;
      await time.increase(WINDOW);
      await b.settleBatch(batchId);
      await expect(b.settleBatch(batchId))
        .to.be.revertedWithCustomError(b, "BatchSettlement__WrongState")
        .withArgs(batchId, BATCH_STATE.Settled);
      await expect(b.settleBatch(2n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__UnknownBatch")
        .withArgs(2n);
      await expect(b.settleableAt(2n))
        .to.be.revertedWithCustomError(b, "BatchSettlement__UnknownBatch")
        .withArgs(2n);
    });

    it("withdrawEarnings pays the whole credit once, to any address", async function () {
      const { f, a, batchId } = await loadFixture(postedFixture);
      const b = f.batchSettlement;
      await time.increase(WINDOW);
      await b.settleBatch(batchId);
      const tx = b.connect(f.node1).withdrawEarnings(a.other);
      await expect(tx).to.emit(b, "EarningsWithdrawn").withArgs(a.node, a.other, NODE_AMOUNT);
      await expect(tx).to.changeEtherBalances([b, f.other], [-NODE_AMOUNT, NODE_AMOUNT]);
      expect(await b.credits(a.node)).to.equal(0n);
      await expect(b.connect(f.node1).withdrawEarnings(a.node))
        .to.be.revertedWithCustomError(b, "BatchSettlement__NothingToWithdraw")
        .withArgs(a.node);
      await expect(b.connect(f.treasury).withdrawEarnings(ZeroAddress)).to.be.revertedWithCustomError(
        b,
        "System__ZeroAddress",
      );
      // A recipient that refuses the transfer: the credit stays.
      await expect(b.connect(f.treasury).withdrawEarnings(FIXED_ADDRESSES.modelRegistry))
        .to.be.revertedWithCustomError(b, "BatchSettlement__TransferFailed")
        .withArgs(FIXED_ADDRESSES.modelRegistry, PROTOCOL_AMOUNT);
      expect(await b.credits(a.treasury)).to.equal(PROTOCOL_AMOUNT);
      await checkInvariants(f, [a.payer], [a.node, a.treasury]);
    });
  });

  describe("challengeLeaf (checks before the dispute opens)", function () {
    it("needs a proven leaf of a Posted batch inside its window", async function () {
      const { f, leaves, tree, postedAt, batchId } = await loadFixture(postedFixture);
      const b = f.batchSettlement.connect(f.other);
      const leaf = leaves[0]!;
      const proof = proofFor(tree, leaf.requestId);
      const challenge = (id: bigint, l: BatchLeaf, p: string[]) =>
        b.challengeLeaf(id, l.requestId, l.inputHash, l.outputHash, p, h(42), { gasLimit: 1_000_000 });
      await expect(challenge(9n, leaf, proof))
        .to.be.revertedWithCustomError(b, "BatchSettlement__UnknownBatch")
        .withArgs(9n);
      await expect(challenge(batchId, { ...leaf, outputHash: h(43) }, proof))
        .to.be.revertedWithCustomError(b, "BatchSettlement__InvalidProof")
        .withArgs(batchId, leaf.requestId);
      await expect(challenge(batchId, leaf, proof.slice(1)))
        .to.be.revertedWithCustomError(b, "BatchSettlement__InvalidProof")
        .withArgs(batchId, leaf.requestId);
      await time.setNextBlockTimestamp(postedAt + WINDOW);
      await expect(challenge(batchId, leaf, proof))
        .to.be.revertedWithCustomError(b, "BatchSettlement__ChallengeWindowClosed")
        .withArgs(batchId, postedAt + WINDOW);
      await b.settleBatch(batchId);
      await expect(challenge(batchId, leaf, proof))
        .to.be.revertedWithCustomError(b, "BatchSettlement__WrongState")
        .withArgs(batchId, BATCH_STATE.Settled);
    });
  });

  describe("challenges through Settlement's dispute engine", function () {
    const P = DEVNET_PARAMS.disputes;
    const VERDICT = { Pending: 0, AccusedRight: 1, AccusedWrong: 2, NoMajority: 3 } as const;
    const CORRECT = keccak256(toUtf8Bytes("the output an honest node computes")) as Hex;

    /** postedFixture plus four staked verifiers. */
    async function verifiersFixture() {
      const x = await loadFixture(postedFixture);
      const verifiers = x.f.signers.slice(7, 11);
      for (const v of verifiers)
        await x.f.nodes.connect(v).register(ROLE.VERIFIER, { value: DEVNET_PARAMS.stake.minStakeVerifier });
      return { ...x, verifiers };
    }

    /** The batch's third leaf challenged by verifiers[0], the committee drawn. */
    async function challengedFixture() {
      const x = await loadFixture(verifiersFixture);
      const leaf = x.leaves[2]!;
      const challenger = x.verifiers[0]!;
      await x.f.batchSettlement
        .connect(challenger)
        .challengeLeaf(
          x.batchId,
          leaf.requestId,
          leaf.inputHash,
          leaf.outputHash,
          proofFor(x.tree, leaf.requestId),
          CORRECT,
          {
            value: P.challengeBond,
          },
        );
      const disputeId = await x.f.batchSettlement.disputeOf(x.batchId);
      await mine(1);
      await x.f.settlement.drawCommittee(disputeId);
      const committee = (await x.f.settlement.dispute(disputeId)).committee;
      return { ...x, leaf, challenger, disputeId, committee };
    }

    async function voteAll(f: Fixture, disputeId: bigint, committee: string[], hash: string) {
      for (const a of committee) await f.settlement.connect(await ethers.getSigner(a)).vote(disputeId, hash);
    }

    async function conserved(f: Fixture, payers: string[], earners: string[]) {
      await checkInvariants(f, payers, earners);
      expect(await ethers.provider.getBalance(f.addresses.settlement)).to.equal(
        (await f.settlement.totalCredits()) + (await f.settlement.bondsHeld()),
        "Settlement balance == credits + bonds",
      );
    }

    it("deploySystem registers batch settlement as a dispute source", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.settlement.isDisputeSource(f.addresses.batchSettlement)).to.equal(true);
    });

    it("a proven leaf opens a dispute about the node's output hash, with the bond, and holds the batch", async function () {
      const { f, a, leaves, tree, batchId, verifiers, postedAt } = await loadFixture(verifiersFixture);
      const b = f.batchSettlement;
      const leaf = leaves[2]!;
      const v = verifiers[0]!;
      const tx = b
        .connect(v)
        .challengeLeaf(
          batchId,
          leaf.requestId,
          leaf.inputHash,
          leaf.outputHash,
          proofFor(tree, leaf.requestId),
          CORRECT,
          {
            value: P.challengeBond,
          },
        );
      await expect(tx)
        .to.emit(b, "LeafChallenged")
        .withArgs(
          batchId,
          1n,
          leaf.requestId,
          await v.getAddress(),
          leaf.inputHash,
          leaf.outputHash,
          CORRECT,
        );
      await expect(tx)
        .to.emit(f.settlement, "DisputeOpened")
        .withArgs(
          1n,
          f.addresses.batchSettlement,
          batchId,
          await v.getAddress(),
          a.node,
          leaf.outputHash,
          CORRECT,
          anyValue,
          anyValue,
        );
      // The bond passes through to Settlement; the batch's money stays where it was.
      await expect(tx).to.changeEtherBalances([b, f.settlement], [0n, P.challengeBond]);
      expect(await b.disputeOf(batchId)).to.equal(1n);
      expect((await b.batch(batchId)).state).to.equal(BATCH_STATE.Challenged);
      const d = await f.settlement.dispute(1n);
      expect(d.source).to.equal(f.addresses.batchSettlement);
      expect(d.subjectId).to.equal(batchId);
      expect(d.accused).to.equal(a.node);

      // While the dispute is open the batch can be neither settled nor challenged again.
      await time.increaseTo(postedAt + WINDOW);
      await expect(b.settleBatch(batchId))
        .to.be.revertedWithCustomError(b, "BatchSettlement__WrongState")
        .withArgs(batchId, BATCH_STATE.Challenged);
      const other = leaves[0]!;
      await expect(
        b
          .connect(verifiers[1]!)
          .challengeLeaf(
            batchId,
            other.requestId,
            other.inputHash,
            other.outputHash,
            proofFor(tree, other.requestId),
            CORRECT,
            {
              value: P.challengeBond,
            },
          ),
      )
        .to.be.revertedWithCustomError(b, "BatchSettlement__WrongState")
        .withArgs(batchId, BATCH_STATE.Challenged);
      await conserved(f, [a.payer], []);
    });

    it("Settlement's own checks apply: the bond, the verifier role, the claimed hash", async function () {
      const { f, leaves, tree, batchId, verifiers } = await loadFixture(verifiersFixture);
      const b = f.batchSettlement;
      const leaf = leaves[1]!;
      const proof = proofFor(tree, leaf.requestId);
      const challenge = (s: Signer, claimed: string, value: bigint) =>
        b
          .connect(s)
          .challengeLeaf(batchId, leaf.requestId, leaf.inputHash, leaf.outputHash, proof, claimed, { value });
      await expect(challenge(verifiers[0]!, CORRECT, 1n))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__WrongBond")
        .withArgs(1n, P.challengeBond);
      await expect(challenge(f.other, CORRECT, P.challengeBond))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__NotVerifier")
        .withArgs(await f.other.getAddress());
      await expect(challenge(verifiers[0]!, leaf.outputHash, P.challengeBond))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__SameHash")
        .withArgs(leaf.outputHash);
      await expect(challenge(verifiers[0]!, ZeroHash, P.challengeBond)).to.be.revertedWithCustomError(
        f.settlement,
        "Settlement__ZeroHash",
      );
      expect((await b.batch(batchId)).state).to.equal(BATCH_STATE.Posted);
    });

    it("a wrong leaf voids the batch: the fee goes back to the payer's deposit and the node is slashed", async function () {
      const { f, a, batchId, disputeId, committee, postedAt } = await loadFixture(challengedFixture);
      const b = f.batchSettlement;
      await voteAll(f, disputeId, committee, CORRECT);
      const stake = await f.nodes.stakeOf(a.node);
      const tx = f.settlement.resolveDispute(disputeId);
      await expect(tx)
        .to.emit(b, "BatchDisputeResolved")
        .withArgs(batchId, disputeId, VERDICT.AccusedWrong, FEE);
      await expect(tx).to.emit(f.nodes, "NodeSlashed");
      expect(await f.nodes.stakeOf(a.node)).to.equal(stake - P.slashAmount);
      expect((await b.batch(batchId)).state).to.equal(BATCH_STATE.Voided);
      expect(await b.depositOf(a.payer)).to.equal(DEPOSIT);
      expect(await b.totalEscrow()).to.equal(0n);
      // A void batch never pays, and the payer can take the fee back out.
      await time.increaseTo(postedAt + WINDOW + 1n);
      await expect(b.settleBatch(batchId))
        .to.be.revertedWithCustomError(b, "BatchSettlement__WrongState")
        .withArgs(batchId, BATCH_STATE.Voided);
      await expect(b.connect(f.user).withdraw(DEPOSIT)).to.changeEtherBalance(f.user, DEPOSIT);
      await conserved(f, [a.payer], [a.node, a.treasury]);
    });

    it("a right leaf clears the challenge: the challenger loses its bond and the node is paid", async function () {
      const { f, a, batchId, disputeId, committee, leaf, leaves, tree, verifiers } =
        await loadFixture(challengedFixture);
      const b = f.batchSettlement;
      await voteAll(f, disputeId, committee, leaf.outputHash);
      const tx = f.settlement.resolveDispute(disputeId);
      // Everyone voted, so the dispute ended inside the window: a judged leaf cannot be
      // challenged again, another leaf can.
      const again = (l: (typeof leaves)[number]) =>
        b
          .connect(verifiers[1]!)
          .challengeLeaf(
            batchId,
            l.requestId,
            l.inputHash,
            l.outputHash,
            proofFor(tree, l.requestId),
            CORRECT,
            {
              value: P.challengeBond,
            },
          );
      await (await tx).wait();
      await expect(again(leaf).then((t) => t.wait()))
        .to.be.revertedWithCustomError(b, "BatchSettlement__LeafAlreadyChallenged")
        .withArgs(batchId, leaf.requestId);
      const snapshot = await ethers.provider.send("evm_snapshot", []);
      await expect(again(leaves[0]!)).to.emit(f.settlement, "DisputeOpened");
      await ethers.provider.send("evm_revert", [snapshot]);
      await expect(tx)
        .to.emit(b, "BatchDisputeResolved")
        .withArgs(batchId, disputeId, VERDICT.AccusedRight, 0n);
      await expect(tx).to.not.emit(f.nodes, "NodeSlashed");
      // Nothing slashed, nothing paid to the challenger: its bond goes to the voters and the treasury.
      await expect(tx)
        .to.emit(f.settlement, "DisputeResolved")
        .withArgs(disputeId, VERDICT.AccusedRight, leaf.outputHash, 0n, 0n, anyValue, anyValue);
      expect((await b.batch(batchId)).state).to.equal(BATCH_STATE.Posted);
      await time.increase(WINDOW);
      await expect(b.settleBatch(batchId))
        .to.emit(b, "BatchSettled")
        .withArgs(batchId, a.node, NODE_AMOUNT, PROTOCOL_AMOUNT);
      expect(await b.depositOf(a.payer)).to.equal(DEPOSIT - FEE);
      await conserved(f, [a.payer], [a.node, a.treasury]);
    });

    it("no majority leaves the batch to settle as usual", async function () {
      const { f, a, batchId, disputeId } = await loadFixture(challengedFixture);
      const b = f.batchSettlement;
      await time.increaseTo((await f.settlement.dispute(disputeId)).votingEndsAt + 1n);
      await expect(f.settlement.resolveDispute(disputeId))
        .to.emit(b, "BatchDisputeResolved")
        .withArgs(batchId, disputeId, VERDICT.NoMajority, 0n);
      await expect(b.settleBatch(batchId)).to.emit(b, "BatchSettled");
      await conserved(f, [a.payer], [a.node, a.treasury]);
    });

    it("onDisputeResolved accepts only Settlement, about this batch's open dispute, with a final verdict", async function () {
      const { f, batchId, disputeId } = await loadFixture(challengedFixture);
      const b = f.batchSettlement;
      await expect(b.connect(f.other).onDisputeResolved(disputeId, batchId, VERDICT.AccusedWrong))
        .to.be.revertedWithCustomError(b, "BatchSettlement__OnlySettlement")
        .withArgs(await f.other.getAddress());
      await hre.network.provider.send("hardhat_setBalance", [
        f.addresses.settlement,
        toBeHex(parseEther("10")),
      ]);
      const asSettlement = await ethers.getImpersonatedSigner(f.addresses.settlement);
      await expect(b.connect(asSettlement).onDisputeResolved(disputeId + 1n, batchId, VERDICT.AccusedWrong))
        .to.be.revertedWithCustomError(b, "BatchSettlement__UnknownDispute")
        .withArgs(batchId, disputeId + 1n);
      await expect(b.connect(asSettlement).onDisputeResolved(disputeId, batchId + 1n, VERDICT.AccusedWrong))
        .to.be.revertedWithCustomError(b, "BatchSettlement__UnknownDispute")
        .withArgs(batchId + 1n, disputeId);
      await expect(b.connect(asSettlement).onDisputeResolved(disputeId, batchId, VERDICT.Pending))
        .to.be.revertedWithCustomError(b, "BatchSettlement__UnexpectedVerdict")
        .withArgs(disputeId, VERDICT.Pending);
    });
  });

  describe("properties", function () {
    /**
     * Random sequences of deposits, withdrawals, approvals, posts, settlements, clock moves and
     * earnings withdrawals, against an off-chain model of every balance. After every call: the
     * contract holds exactly deposits + escrow + credits (to the wei), every view matches the
     * model, a call the model says must fail reverts with the named error, and a withdrawal moves
     * exactly what was deposited or credited, never more.
     * GRADNET_PROPERTY_RUNS=N sets the number of sequences (default 60).
     */
    const RUNS = Number(process.env.GRADNET_PROPERTY_RUNS?.match(/^\d+$/)?.[0] ?? 60);
    const GAS = { gasLimit: 500_000 } as const;

    type Cmd =
      | { kind: "deposit"; payer: number; amount: bigint }
      | { kind: "withdraw"; payer: number; amount: bigint }
      | { kind: "approve"; payer: number; node: number; allowance: bigint }
      | { kind: "post"; node: number; payer: number; fee: bigint }
      | { kind: "settle"; pick: number } // one of the posted batches; batch 1 (unknown) before any
      | { kind: "advance"; seconds: number }
      | { kind: "earnings"; earner: number };

    const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
    const amount = fc.bigInt({ min: 0n, max: 3_000_000n });
    const fee = fc.oneof(w(1, fc.constant(0n)), w(8, fc.bigInt({ min: 1n, max: 1_000_000n })));
    const cmd: fc.Arbitrary<Cmd> = fc.oneof(
      w(1, fc.record({ kind: fc.constant("deposit" as const), payer: fc.nat(1), amount })),
      w(1, fc.record({ kind: fc.constant("withdraw" as const), payer: fc.nat(1), amount })),
      w(
        1,
        fc.record({
          kind: fc.constant("approve" as const),
          payer: fc.nat(1),
          node: fc.nat(1),
          allowance: fc.oneof(amount, fc.constant(MaxUint256)),
        }),
      ),
      w(
        4,
        fc.record({
          kind: fc.constant("post" as const),
          node: fc.constantFrom(0, 0, 0, 1, 1, 2), // 2 is not a node
          payer: fc.nat(1),
          fee,
        }),
      ),
      w(3, fc.record({ kind: fc.constant("settle" as const), pick: fc.nat() })),
      w(3, fc.record({ kind: fc.constant("advance" as const), seconds: fc.integer({ min: 1, max: 150 }) })),
      w(2, fc.record({ kind: fc.constant("earnings" as const), earner: fc.nat(2) })),
    );

    /** Both payers hold 2,000,000 wei; each allows node1 3,000,000 and node2 1,500,000. */
    async function fund(f: Fixture): Promise<void> {
      for (const p of [f.user, f.other]) {
        await f.batchSettlement.connect(p).deposit({ value: 2_000_000n });
        await f.batchSettlement.connect(p).approveNode(await f.node1.getAddress(), 3_000_000n);
        await f.batchSettlement.connect(p).approveNode(await f.node2.getAddress(), 1_500_000n);
      }
    }

    it("conserves value to the wei and never pays out more than deposited or credited", async function () {
      const stranger = (await ethers.getSigners())[8]!;
      let settled = 0;
      let paidOut = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(cmd, { minLength: 10, maxLength: 30, size: "max" }), async (cmds) => {
          const f = await loadFixture(deployFixture);
          await fund(f);
          const b = f.batchSettlement;
          const bAddress = await b.getAddress();
          const payers: Signer[] = [f.user, f.other];
          const nodes: Signer[] = [f.node1, f.node2, stranger]; // the third is not a node
          const earners: Signer[] = [f.node1, f.node2, f.treasury];
          const addr = new Map<Signer, string>();
          for (const s of [...payers, ...nodes, f.treasury]) addr.set(s, await s.getAddress());
          const A = (s: Signer) => addr.get(s)!;

          const deposits = new Map<string, bigint>();
          const allowances = new Map<string, bigint>();
          const credits = new Map<string, bigint>();
          const batches: { node: string; payer: string; fee: bigint; postedAt: bigint; state: number }[] = [];
          const get = (m: Map<string, bigint>, k: string) => m.get(k) ?? 0n;
          const add = (m: Map<string, bigint>, k: string, v: bigint) => m.set(k, get(m, k) + v);
          for (const p of payers) {
            deposits.set(A(p), 2_000_000n);
            allowances.set(`${A(p)}:${A(f.node1)}`, 3_000_000n);
            allowances.set(`${A(p)}:${A(f.node2)}`, 1_500_000n);
          }

          for (const c of cmds) {
            const next = BigInt(await time.latest()) + 1n;
            await time.setNextBlockTimestamp(next);
            const before = await ethers.provider.getBalance(bAddress);
            let moved = 0n; // what leaves the contract
            let arrives = 0n; // what enters it
            switch (c.kind) {
              case "deposit": {
                const p = payers[c.payer]!;
                const tx = b.connect(p).deposit({ ...GAS, value: c.amount });
                if (c.amount === 0n) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__ZeroAmount");
                } else {
                  await (await tx).wait();
                  add(deposits, A(p), c.amount);
                  arrives = c.amount;
                }
                break;
              }
              case "withdraw": {
                const p = payers[c.payer]!;
                const tx = b.connect(p).withdraw(c.amount, GAS);
                const has = get(deposits, A(p));
                if (c.amount === 0n) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__ZeroAmount");
                } else if (c.amount > has) {
                  await expect(tx)
                    .to.be.revertedWithCustomError(b, "BatchSettlement__InsufficientDeposit")
                    .withArgs(A(p), has, c.amount);
                } else {
                  await (await tx).wait();
                  deposits.set(A(p), has - c.amount);
                  moved = c.amount;
                }
                break;
              }
              case "approve": {
                const p = payers[c.payer]!;
                const n = nodes[c.node]!;
                await (await b.connect(p).approveNode(A(n), c.allowance, GAS)).wait();
                allowances.set(`${A(p)}:${A(n)}`, c.allowance);
                break;
              }
              case "post": {
                const n = nodes[c.node]!;
                const p = payers[c.payer]!;
                const key = `${A(p)}:${A(n)}`;
                const tx = b.connect(n).postBatch(A(p), MODEL_ID, h(batches.length + 1), 10, c.fee, GAS);
                if (c.node === 2) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__NotInferenceNode");
                } else if (c.fee === 0n) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__ZeroAmount");
                } else if (c.fee > get(allowances, key)) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__AllowanceExceeded");
                } else if (c.fee > get(deposits, A(p))) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__InsufficientDeposit");
                } else {
                  await (await tx).wait();
                  if (get(allowances, key) !== MaxUint256) allowances.set(key, get(allowances, key) - c.fee);
                  add(deposits, A(p), -c.fee);
                  batches.push({
                    node: A(n),
                    payer: A(p),
                    fee: c.fee,
                    postedAt: next,
                    state: BATCH_STATE.Posted,
                  });
                }
                break;
              }
              case "settle": {
                const index = c.pick % Math.max(batches.length, 1);
                const id = BigInt(index + 1);
                const batch = batches[index];
                const tx = b.connect(f.other).settleBatch(id, GAS);
                if (batch === undefined) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__UnknownBatch");
                } else if (batch.state !== BATCH_STATE.Posted) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__WrongState");
                } else if (next < batch.postedAt + WINDOW) {
                  await expect(tx)
                    .to.be.revertedWithCustomError(b, "BatchSettlement__ChallengeWindowOpen")
                    .withArgs(id, batch.postedAt + WINDOW);
                } else {
                  await (await tx).wait();
                  const protocol = (batch.fee * PROTOCOL_FEE_BPS) / 10_000n;
                  add(credits, batch.node, batch.fee - protocol);
                  add(credits, A(f.treasury), protocol);
                  batch.state = BATCH_STATE.Settled;
                  settled += 1;
                }
                break;
              }
              case "advance":
                await time.increase(c.seconds);
                break;
              case "earnings": {
                const e = earners[c.earner]!;
                const has = get(credits, A(e));
                const tx = b.connect(e).withdrawEarnings(A(e), GAS);
                if (has === 0n) {
                  await expect(tx).to.be.revertedWithCustomError(b, "BatchSettlement__NothingToWithdraw");
                } else {
                  await (await tx).wait();
                  credits.set(A(e), 0n);
                  paidOut += 1;
                  moved = has;
                }
                break;
              }
            }
            // Exactly what the model says moved in or out, and nothing else.
            expect(await ethers.provider.getBalance(bAddress)).to.equal(before + arrives - moved);

            let sumDeposits = 0n;
            for (const p of payers) {
              expect(await b.depositOf(A(p))).to.equal(get(deposits, A(p)));
              sumDeposits += get(deposits, A(p));
              for (const n of nodes.slice(0, 2))
                expect(await b.allowance(A(p), A(n))).to.equal(get(allowances, `${A(p)}:${A(n)}`));
            }
            let sumCredits = 0n;
            for (const e of earners) {
              expect(await b.credits(A(e))).to.equal(get(credits, A(e)));
              sumCredits += get(credits, A(e));
            }
            const escrow = batches
              .filter((x) => x.state === BATCH_STATE.Posted)
              .reduce((s, x) => s + x.fee, 0n);
            expect(await b.batchCount()).to.equal(BigInt(batches.length));
            expect(await b.totalDeposits()).to.equal(sumDeposits);
            expect(await b.totalEscrow()).to.equal(escrow);
            expect(await b.totalCredits()).to.equal(sumCredits);
            expect(await ethers.provider.getBalance(bAddress)).to.equal(sumDeposits + escrow + sumCredits);
          }
        }),
        { numRuns: RUNS },
      );
      // The sequences reach the interesting states, not only the reverts (about 0.8 settled
      // batches and 0.3 payouts per sequence; the bounds are far below that).
      if (RUNS >= 20) {
        expect(settled).to.be.at.least(RUNS / 4);
        expect(paidOut).to.be.at.least(RUNS / 10);
      }
    });
  });
});
