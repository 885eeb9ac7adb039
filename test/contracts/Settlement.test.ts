import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, keccak256, parseEther, toUtf8Bytes, type Signer } from "ethers";
import { DEVNET_PARAMS } from "../../deploy/config";
import { TEST_PARAMS } from "./helpers";
import type { Settlement__factory } from "../../typechain-types";
import {
  MODEL_FEE,
  MODEL_ID,
  SAMPLE_INPUT,
  SAMPLE_OUTPUT,
  STATE,
  STATUS,
  deployFixture,
  fulfillmentFromTx,
  requestFromTx,
  type Fixture,
  type FulfillmentStruct,
  type RequestStruct,
} from "./helpers";

const WINDOW = BigInt(DEVNET_PARAMS.settlement.challengeWindow); // 60 s
const OUTPUT_HASH = keccak256(SAMPLE_OUTPUT);

// A fee with dust, split 10% owner / 5% protocol / the rest to the node, rounding down.
const FEE = MODEL_FEE + 1234n; // 10_000_000_000_001_234 wei
const OWNER_AMOUNT = 1_000_000_000_000_123n;
const PROTOCOL_AMOUNT = 500_000_000_000_061n;
const NODE_AMOUNT = 8_500_000_000_001_050n;

/** Pin the next block's timestamp, so that values derived from it are exact. */
async function nextTimestamp(ahead = 10): Promise<bigint> {
  const t = (await time.latest()) + ahead;
  await time.setNextBlockTimestamp(t);
  return BigInt(t);
}

async function request(f: Fixture, fee: bigint = FEE, from: Signer = f.user): Promise<RequestStruct> {
  return requestFromTx(
    f,
    await f.hub.connect(from).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: fee }),
  );
}

async function fulfil(f: Fixture, req: RequestStruct, node: Signer = f.node1): Promise<FulfillmentStruct> {
  const tx = await f.hub.connect(node).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH);
  return fulfillmentFromTx(f, tx, req.requestId);
}

/**
 * The money invariants: the settlement holds exactly its credits (and they add up over the
 * accounts that can hold any), the hub holds exactly the fees of Pending and Fulfilled requests.
 */
async function checkInvariants(f: Fixture, reqs: RequestStruct[], extra: string[] = []): Promise<void> {
  const total = await f.settlement.totalCredits();
  expect(await ethers.provider.getBalance(f.addresses.settlement)).to.equal(total, "settlement balance");
  const accounts = [
    ...(await Promise.all(
      [f.node1, f.node2, f.modelOwner, f.treasury, f.user, f.other, f.owner].map((s) => s.getAddress()),
    )),
    ...extra,
  ];
  let sum = 0n;
  for (const a of accounts) sum += await f.settlement.credits(a);
  expect(sum).to.equal(total, "sum of credits");
  let held = 0n;
  for (const r of reqs) {
    const s = await f.hub.requestState(r.requestId);
    if (s === BigInt(STATE.Pending) || s === BigInt(STATE.Fulfilled)) held += r.fee;
  }
  expect(await ethers.provider.getBalance(f.addresses.inferenceHub)).to.equal(held, "hub balance");
}

/** The fixture plus one request fulfilled by node1 at a pinned timestamp. */
async function fulfilledFixture() {
  const f = await loadFixture(deployFixture);
  const req = await request(f);
  const fulfilledAt = await nextTimestamp();
  const ful = await fulfil(f, req);
  return { f, req, ful, fulfilledAt };
}

/** As above, with the challenge window passed and the request finalised. */
async function finalizedFixture() {
  const x = await fulfilledFixture();
  await time.increase(WINDOW + 1n);
  await x.f.settlement.finalize(x.req, x.ful);
  return x;
}

describe("Settlement", function () {
  describe("views", function () {
    it("params() returns the deployed parameters", async function () {
      const f = await loadFixture(deployFixture);
      const p = await f.settlement.params();
      expect(p.treasury).to.equal(await f.treasury.getAddress());
      expect(p.challengeWindow).to.equal(WINDOW);
      expect(p.protocolFeeBps).to.equal(500n);
      expect(await f.settlement.MAX_PROTOCOL_FEE_BPS()).to.equal(2_000n);
      expect(await f.settlement.MAX_CHALLENGE_WINDOW()).to.equal(30n * 24n * 3600n);
      expect(await f.settlement.totalCredits()).to.equal(0n);
    });

    it("finalizableAt is fulfilledAt plus the challenge window", async function () {
      const { f, ful, fulfilledAt } = await loadFixture(fulfilledFixture);
      expect(ful.fulfilledAt).to.equal(fulfilledAt);
      expect(await f.settlement.finalizableAt(ful)).to.equal(fulfilledAt + WINDOW);
      expect(
        await f.settlement.finalizableAt({
          node: ZeroAddress,
          outputHash: ethers.ZeroHash,
          fulfilledAt: 1000,
        }),
      ).to.equal(1000n + WINDOW);
    });
  });

  describe("finalize", function () {
    it("reverts ChallengeWindowOpen inside the window, up to the last second", async function () {
      const { f, req, ful, fulfilledAt } = await loadFixture(fulfilledFixture);
      const at = fulfilledAt + WINDOW;
      await expect(f.settlement.finalize(req, ful))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__ChallengeWindowOpen")
        .withArgs(req.requestId, at);
      await time.setNextBlockTimestamp(at - 1n);
      await expect(f.settlement.finalize(req, ful, { gasLimit: 500_000 }))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__ChallengeWindowOpen")
        .withArgs(req.requestId, at);
      expect(await time.latest()).to.equal(Number(at - 1n));
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Fulfilled);
      await time.setNextBlockTimestamp(at);
      await expect(f.settlement.finalize(req, ful)).to.emit(f.settlement, "Settled");
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Finalized);
    });

    it("after the window splits the fee exactly into credits", async function () {
      const { f, req, ful } = await loadFixture(fulfilledFixture);
      await checkInvariants(f, [req]);
      await time.increase(WINDOW + 1n);
      const node1 = await f.node1.getAddress();
      const modelOwner = await f.modelOwner.getAddress();
      const treasury = await f.treasury.getAddress();
      expect(OWNER_AMOUNT + PROTOCOL_AMOUNT + NODE_AMOUNT).to.equal(FEE);

      // Anyone may finalise.
      const tx = await f.settlement.connect(f.other).finalize(req, ful);
      await expect(tx)
        .to.emit(f.settlement, "Settled")
        .withArgs(req.requestId, node1, modelOwner, NODE_AMOUNT, OWNER_AMOUNT, PROTOCOL_AMOUNT);
      await expect(tx).to.emit(f.hub, "RequestReleased").withArgs(req.requestId, FEE);
      await expect(tx).to.changeEtherBalances([f.hub, f.settlement, f.other, f.node1], [-FEE, FEE, 0, 0]);
      expect(await f.settlement.credits(node1)).to.equal(NODE_AMOUNT);
      expect(await f.settlement.credits(modelOwner)).to.equal(OWNER_AMOUNT);
      expect(await f.settlement.credits(treasury)).to.equal(PROTOCOL_AMOUNT);
      expect(await f.settlement.credits(await f.other.getAddress())).to.equal(0n);
      expect(await f.settlement.totalCredits()).to.equal(FEE);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Finalized);
      await checkInvariants(f, [req]);
    });

    it("pays the node that answered and the model's current owner", async function () {
      const f = await loadFixture(deployFixture);
      const req = await request(f, MODEL_FEE);
      const ful = await fulfil(f, req, f.node2);
      await f.models.connect(f.modelOwner).transferModelOwnership(MODEL_ID, await f.other.getAddress());
      await time.increase(WINDOW + 1n);
      await expect(f.settlement.finalize(req, ful))
        .to.emit(f.settlement, "Settled")
        .withArgs(
          req.requestId,
          await f.node2.getAddress(),
          await f.other.getAddress(),
          parseEther("0.0085"),
          parseEther("0.001"),
          parseEther("0.0005"),
        );
      expect(await f.settlement.credits(await f.node2.getAddress())).to.equal(parseEther("0.0085"));
      expect(await f.settlement.credits(await f.other.getAddress())).to.equal(parseEther("0.001"));
      expect(await f.settlement.credits(await f.modelOwner.getAddress())).to.equal(0n);
      await checkInvariants(f, [req]);
    });

    it("a second finalize reverts Hub__WrongState(Finalized)", async function () {
      const { f, req, ful } = await loadFixture(finalizedFixture);
      await expect(f.settlement.finalize(req, ful))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Finalized);
      expect(await f.settlement.totalCredits()).to.equal(FEE);
      await checkInvariants(f, [req]);
    });

    it("a forged fulfillment or request reverts Hub__CommitmentMismatch", async function () {
      const { f, req, ful } = await loadFixture(fulfilledFixture);
      await time.increase(WINDOW + 10n);
      const forgeries: [RequestStruct, FulfillmentStruct][] = [
        [req, { ...ful, node: await f.node2.getAddress() }],
        [req, { ...ful, outputHash: keccak256("0x1234") }],
        [req, { ...ful, fulfilledAt: ful.fulfilledAt + 1n }],
        [req, { ...ful, fulfilledAt: ful.fulfilledAt - 1n }],
        [{ ...req, fee: req.fee * 2n }, ful],
        [{ ...req, requester: await f.other.getAddress() }, ful],
      ];
      for (const [r, fl] of forgeries) {
        await expect(f.settlement.finalize(r, fl))
          .to.be.revertedWithCustomError(f.hub, "Hub__CommitmentMismatch")
          .withArgs(req.requestId);
      }
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Fulfilled);
      await checkInvariants(f, [req]);
      await f.settlement.finalize(req, ful);
      await checkInvariants(f, [req]);
    });

    it("a pending request reverts Hub__WrongState(Pending); an unknown one Hub__UnknownRequest", async function () {
      const f = await loadFixture(deployFixture);
      const req = await request(f);
      const fake = { node: await f.node1.getAddress(), outputHash: OUTPUT_HASH, fulfilledAt: 0n };
      await expect(f.settlement.finalize(req, fake))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Pending);
      await expect(f.settlement.finalize({ ...req, requestId: 99n }, fake))
        .to.be.revertedWithCustomError(f.hub, "Hub__UnknownRequest")
        .withArgs(99n);
      await checkInvariants(f, [req]);
    });

    it("only the settlement may call hub.release", async function () {
      const { f, req, ful } = await loadFixture(fulfilledFixture);
      await time.increase(WINDOW + 1n);
      await expect(f.hub.connect(f.node1).release(req, ful))
        .to.be.revertedWithCustomError(f.hub, "Hub__OnlySettlement")
        .withArgs(await f.node1.getAddress());
    });
  });

  describe("finalizeBatch", function () {
    async function threeFulfilled() {
      const f = await loadFixture(deployFixture);
      const fees = [parseEther("0.01"), parseEther("0.02"), parseEther("0.05")];
      const nodes = [f.node1, f.node2, f.node1];
      const reqs: RequestStruct[] = [];
      const fuls: FulfillmentStruct[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await request(f, fees[i]!);
        reqs.push(r);
        fuls.push(await fulfil(f, r, nodes[i]!));
      }
      return { f, reqs, fuls };
    }

    it("finalises several, returns the sum and credits each party", async function () {
      const { f, reqs, fuls } = await loadFixture(threeFulfilled);
      await time.increase(WINDOW + 1n);
      await checkInvariants(f, reqs);
      expect(await f.settlement.finalizeBatch.staticCall(reqs, fuls)).to.equal(parseEther("0.08"));
      const tx = await f.settlement.finalizeBatch(reqs, fuls);
      await expect(tx).to.changeEtherBalances(
        [f.hub, f.settlement],
        [-parseEther("0.08"), parseEther("0.08")],
      );
      const [n1, n2, mo] = await Promise.all([f.node1, f.node2, f.modelOwner].map((s) => s.getAddress()));
      const receipt = await tx.wait();
      const settled = receipt!.logs
        .map((l) => f.settlement.interface.parseLog(l))
        .filter((e) => e?.name === "Settled");
      expect(settled.map((e) => e!.args.requestId)).to.deep.equal(reqs.map((r) => r.requestId));
      await expect(tx)
        .to.emit(f.settlement, "Settled")
        .withArgs(
          reqs[0]!.requestId,
          n1,
          mo,
          parseEther("0.0085"),
          parseEther("0.001"),
          parseEther("0.0005"),
        );
      await expect(tx)
        .to.emit(f.settlement, "Settled")
        .withArgs(reqs[1]!.requestId, n2, mo, parseEther("0.017"), parseEther("0.002"), parseEther("0.001"));
      await expect(tx)
        .to.emit(f.settlement, "Settled")
        .withArgs(
          reqs[2]!.requestId,
          n1,
          mo,
          parseEther("0.0425"),
          parseEther("0.005"),
          parseEther("0.0025"),
        );
      for (const r of reqs) expect(await f.hub.requestState(r.requestId)).to.equal(STATE.Finalized);
      expect(await f.settlement.credits(n1!)).to.equal(parseEther("0.051"));
      expect(await f.settlement.credits(n2!)).to.equal(parseEther("0.017"));
      expect(await f.settlement.credits(mo!)).to.equal(parseEther("0.008"));
      expect(await f.settlement.credits(await f.treasury.getAddress())).to.equal(parseEther("0.004"));
      expect(await f.settlement.totalCredits()).to.equal(parseEther("0.08"));
      await checkInvariants(f, reqs);
    });

    it("reverts Settlement__InvalidParams on a length mismatch", async function () {
      const { f, reqs, fuls } = await loadFixture(threeFulfilled);
      await time.increase(WINDOW + 1n);
      await expect(f.settlement.finalizeBatch(reqs, fuls.slice(0, 2))).to.be.revertedWithCustomError(
        f.settlement,
        "Settlement__InvalidParams",
      );
      await expect(f.settlement.finalizeBatch([], fuls)).to.be.revertedWithCustomError(
        f.settlement,
        "Settlement__InvalidParams",
      );
      expect(await f.settlement.finalizeBatch.staticCall([], [])).to.equal(0n);
    });

    it("is all or nothing: one item inside its window or already final reverts the batch", async function () {
      const { f, reqs, fuls } = await loadFixture(threeFulfilled);
      await time.increase(WINDOW + 1n);
      const late = await request(f, MODEL_FEE);
      const lateFul = await fulfil(f, late, f.node2);
      await expect(f.settlement.finalizeBatch([...reqs, late], [...fuls, lateFul]))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__ChallengeWindowOpen")
        .withArgs(late.requestId, lateFul.fulfilledAt + WINDOW);
      await f.settlement.finalize(reqs[0]!, fuls[0]!);
      await expect(f.settlement.finalizeBatch(reqs, fuls))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(reqs[0]!.requestId, STATE.Finalized);
      expect(await f.hub.requestState(reqs[1]!.requestId)).to.equal(STATE.Fulfilled);
      expect(await f.hub.requestState(reqs[2]!.requestId)).to.equal(STATE.Fulfilled);
      await checkInvariants(f, [...reqs, late]);
    });
  });

  describe("withdraw", function () {
    it("pays out the caller's whole credit and zeroes it", async function () {
      const { f, req } = await loadFixture(finalizedFixture);
      const node1 = await f.node1.getAddress();
      const tx = await f.settlement.connect(f.node1).withdraw(node1);
      await expect(tx).to.emit(f.settlement, "Withdrawn").withArgs(node1, node1, NODE_AMOUNT);
      await expect(tx).to.changeEtherBalances([f.settlement, f.node1], [-NODE_AMOUNT, NODE_AMOUNT]);
      expect(await f.settlement.credits(node1)).to.equal(0n);
      expect(await f.settlement.totalCredits()).to.equal(FEE - NODE_AMOUNT);
      await checkInvariants(f, [req]);

      await expect(f.settlement.connect(f.node1).withdraw(node1))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__NothingToWithdraw")
        .withArgs(node1);
    });

    it("pays to another address; everyone withdrawing empties the contract", async function () {
      const { f, req } = await loadFixture(finalizedFixture);
      const modelOwner = await f.modelOwner.getAddress();
      const other = await f.other.getAddress();
      const tx = await f.settlement.connect(f.modelOwner).withdraw(other);
      await expect(tx).to.emit(f.settlement, "Withdrawn").withArgs(modelOwner, other, OWNER_AMOUNT);
      await expect(tx).to.changeEtherBalances(
        [f.settlement, f.modelOwner, f.other],
        [-OWNER_AMOUNT, 0, OWNER_AMOUNT],
      );
      expect(await f.settlement.credits(modelOwner)).to.equal(0n);
      expect(await f.settlement.credits(other)).to.equal(0n);
      expect(await f.settlement.totalCredits()).to.equal(FEE - OWNER_AMOUNT);
      await checkInvariants(f, [req]);

      const treasury = await f.treasury.getAddress();
      await expect(f.settlement.connect(f.treasury).withdraw(treasury)).to.changeEtherBalances(
        [f.settlement, f.treasury],
        [-PROTOCOL_AMOUNT, PROTOCOL_AMOUNT],
      );
      expect(await f.settlement.totalCredits()).to.equal(NODE_AMOUNT);
      await checkInvariants(f, [req]);
      await f.settlement.connect(f.node1).withdraw(await f.node1.getAddress());
      expect(await f.settlement.totalCredits()).to.equal(0n);
      expect(await ethers.provider.getBalance(f.addresses.settlement)).to.equal(0n);
      await checkInvariants(f, [req]);
    });

    it("reverts NothingToWithdraw for an account without credit", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.settlement.connect(f.user).withdraw(await f.user.getAddress()))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__NothingToWithdraw")
        .withArgs(await f.user.getAddress());
    });

    it("reverts System__ZeroAddress for a zero recipient and keeps the credit", async function () {
      const { f } = await loadFixture(finalizedFixture);
      await expect(f.settlement.connect(f.node1).withdraw(ZeroAddress)).to.be.revertedWithCustomError(
        f.settlement,
        "System__ZeroAddress",
      );
      expect(await f.settlement.credits(await f.node1.getAddress())).to.equal(NODE_AMOUNT);
    });

    it("reverts TransferFailed to a contract that rejects ETH and keeps the credit", async function () {
      const { f, req } = await loadFixture(finalizedFixture);
      const receiver = await (await ethers.getContractFactory("RejectingReceiver")).deploy();
      const to = await receiver.getAddress();
      await expect(f.settlement.connect(f.node1).withdraw(to))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__TransferFailed")
        .withArgs(to, NODE_AMOUNT);
      expect(await f.settlement.credits(await f.node1.getAddress())).to.equal(NODE_AMOUNT);
      expect(await f.settlement.totalCredits()).to.equal(FEE);
      expect(await ethers.provider.getBalance(to)).to.equal(0n);
      await checkInvariants(f, [req]);
    });
  });

  describe("refunds", function () {
    it("refundExpired credits the requester exactly the fee, after the deadline only", async function () {
      const f = await loadFixture(deployFixture);
      const req = await request(f);
      const user = await f.user.getAddress();
      await checkInvariants(f, [req]);
      expect(req.deadline).to.equal(BigInt((await time.latest()) + DEVNET_PARAMS.hub.requestTimeout));
      await expect(f.hub.refundExpired(req))
        .to.be.revertedWithCustomError(f.hub, "Hub__NotExpired")
        .withArgs(req.requestId, req.deadline);
      await time.setNextBlockTimestamp(req.deadline);
      await expect(f.hub.refundExpired(req, { gasLimit: 500_000 }))
        .to.be.revertedWithCustomError(f.hub, "Hub__NotExpired")
        .withArgs(req.requestId, req.deadline);

      // Anyone may trigger it; the credit goes to the requester.
      const tx = await f.hub.connect(f.other).refundExpired(req);
      await expect(tx).to.emit(f.settlement, "RefundCredited").withArgs(req.requestId, user, FEE);
      await expect(tx).to.emit(f.hub, "RequestRefunded").withArgs(req.requestId, user, FEE, STATE.Refunded);
      await expect(tx).to.changeEtherBalances([f.hub, f.settlement, f.user, f.other], [-FEE, FEE, 0, 0]);
      expect(await f.settlement.credits(user)).to.equal(FEE);
      expect(await f.settlement.credits(await f.other.getAddress())).to.equal(0n);
      expect(await f.settlement.totalCredits()).to.equal(FEE);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Refunded);
      await checkInvariants(f, [req]);

      await expect(f.hub.refundExpired(req))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Refunded);
      const fake = { node: await f.node1.getAddress(), outputHash: OUTPUT_HASH, fulfilledAt: 0n };
      await expect(f.settlement.finalize(req, fake))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Refunded);

      await expect(f.settlement.connect(f.user).withdraw(user)).to.changeEtherBalances(
        [f.settlement, f.user],
        [-FEE, FEE],
      );
      await checkInvariants(f, [req]);
    });

    it("an error answer credits the requester exactly the fee and pays the node nothing", async function () {
      const f = await loadFixture(deployFixture);
      const req = await request(f);
      const user = await f.user.getAddress();
      const node1 = await f.node1.getAddress();
      const output = toUtf8Bytes("input tensor 'input' has shape [1,3], expected [-1,4]");
      const outputHash = keccak256(output);
      const tx = await f.hub.connect(f.node1).fulfill(req, STATUS.InvalidInput, output, outputHash);
      await expect(tx).to.emit(f.settlement, "RefundCredited").withArgs(req.requestId, user, FEE);
      await expect(tx).to.emit(f.hub, "RequestRefunded").withArgs(req.requestId, user, FEE, STATE.Failed);
      await expect(tx).to.changeEtherBalances([f.hub, f.settlement, f.user], [-FEE, FEE, 0]);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Failed);
      expect(await f.settlement.credits(user)).to.equal(FEE);
      expect(await f.settlement.credits(node1)).to.equal(0n);
      await checkInvariants(f, [req]);

      await time.increase(WINDOW + 1n);
      const answeredAt = BigInt(await time.latest()) - WINDOW - 1n;
      await expect(f.settlement.finalize(req, { node: node1, outputHash, fulfilledAt: answeredAt }))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Failed);
      await checkInvariants(f, [req]);
    });

    it("refunds accumulate per requester alongside settled fees", async function () {
      const f = await loadFixture(deployFixture);
      const user = await f.user.getAddress();
      const a = await request(f, MODEL_FEE);
      const b = await request(f, FEE);
      const c = await request(f, parseEther("0.3"));
      const reqs = [a, b, c];
      const reason = toUtf8Bytes("model failed to load");
      await f.hub.connect(f.node2).fulfill(a, STATUS.ModelFailed, reason, keccak256(reason));
      await checkInvariants(f, reqs);
      const ful = await fulfil(f, c, f.node1);
      await checkInvariants(f, reqs);
      await time.increaseTo(b.deadline + 1n);
      await f.hub.refundExpired(b);
      await checkInvariants(f, reqs);
      expect(await f.settlement.credits(user)).to.equal(MODEL_FEE + FEE);
      await f.settlement.finalize(c, ful);
      await checkInvariants(f, reqs);
      expect(await f.settlement.credits(await f.node1.getAddress())).to.equal(parseEther("0.255"));
      expect(await f.settlement.totalCredits()).to.equal(MODEL_FEE + FEE + parseEther("0.3"));
      await f.settlement.connect(f.user).withdraw(user);
      await checkInvariants(f, reqs);
      expect(await f.settlement.totalCredits()).to.equal(parseEther("0.3"));
    });

    it("creditRefund from anyone but the hub reverts Settlement__OnlyHub", async function () {
      const f = await loadFixture(deployFixture);
      const user = await f.user.getAddress();
      await expect(f.settlement.connect(f.user).creditRefund(1, user, { value: MODEL_FEE }))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__OnlyHub")
        .withArgs(user);
      await expect(f.settlement.connect(f.owner).creditRefund(1, user))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__OnlyHub")
        .withArgs(await f.owner.getAddress());
      expect(await f.settlement.credits(user)).to.equal(0n);
    });
  });

  describe("payments in", function () {
    it("plain ETH from an EOA reverts Settlement__UnexpectedPayment", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.user.sendTransaction({ to: f.addresses.settlement, value: 1n }))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__UnexpectedPayment")
        .withArgs(await f.user.getAddress());
      await expect(f.owner.sendTransaction({ to: f.addresses.settlement, value: parseEther("1") }))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__UnexpectedPayment")
        .withArgs(await f.owner.getAddress());
      expect(await ethers.provider.getBalance(f.addresses.settlement)).to.equal(0n);
    });
  });

  describe("setParams", function () {
    it("is owner-only", async function () {
      const f = await loadFixture(deployFixture);
      const p = { treasury: await f.other.getAddress(), challengeWindow: 1, protocolFeeBps: 0 };
      await expect(f.settlement.connect(f.other).setParams(p))
        .to.be.revertedWithCustomError(f.settlement, "OwnableUnauthorizedAccount")
        .withArgs(await f.other.getAddress());
      await expect(f.settlement.connect(f.treasury).setParams(p))
        .to.be.revertedWithCustomError(f.settlement, "OwnableUnauthorizedAccount")
        .withArgs(await f.treasury.getAddress());
    });

    it("rejects a zero treasury, a protocol fee above 2000 bps, a window above 30 days", async function () {
      const f = await loadFixture(deployFixture);
      const ok = { treasury: await f.other.getAddress(), challengeWindow: 60, protocolFeeBps: 500 };
      for (const bad of [
        { ...ok, treasury: ZeroAddress },
        { ...ok, protocolFeeBps: 2_001 },
        { ...ok, protocolFeeBps: 10_000 },
        { ...ok, challengeWindow: 30 * 24 * 3600 + 1 },
      ]) {
        await expect(f.settlement.connect(f.owner).setParams(bad)).to.be.revertedWithCustomError(
          f.settlement,
          "Settlement__InvalidParams",
        );
      }
      const p = await f.settlement.params();
      expect(p.treasury).to.equal(await f.treasury.getAddress());
      // The bounds themselves are allowed.
      const edge = { treasury: ok.treasury, challengeWindow: 30 * 24 * 3600, protocolFeeBps: 2_000 };
      await expect(f.settlement.connect(f.owner).setParams(edge))
        .to.emit(f.settlement, "SettlementParamsChanged")
        .withArgs([edge.treasury, edge.challengeWindow, edge.protocolFeeBps]);
    });

    it("emits SettlementParamsChanged and applies to the next finalisation", async function () {
      const { f, req, ful, fulfilledAt } = await loadFixture(fulfilledFixture);
      const other = await f.other.getAddress();
      const next = { treasury: other, challengeWindow: 120, protocolFeeBps: 2_000 };
      await expect(f.settlement.connect(f.owner).setParams(next))
        .to.emit(f.settlement, "SettlementParamsChanged")
        .withArgs([other, 120, 2_000]);
      const p = await f.settlement.params();
      expect([p.treasury, p.challengeWindow, p.protocolFeeBps]).to.deep.equal([other, 120n, 2_000n]);
      expect(await f.settlement.finalizableAt(ful)).to.equal(fulfilledAt + 120n);

      await time.increaseTo(fulfilledAt + WINDOW + 1n);
      await expect(f.settlement.finalize(req, ful))
        .to.be.revertedWithCustomError(f.settlement, "Settlement__ChallengeWindowOpen")
        .withArgs(req.requestId, fulfilledAt + 120n);
      await time.increaseTo(fulfilledAt + 120n);
      // 20% protocol, 10% owner, 70% node; the old treasury gets nothing.
      const protocol = (FEE * 2_000n) / 10_000n;
      expect(protocol).to.equal(2_000_000_000_000_246n);
      const node = FEE - OWNER_AMOUNT - protocol;
      await expect(f.settlement.finalize(req, ful))
        .to.emit(f.settlement, "Settled")
        .withArgs(req.requestId, ful.node, await f.modelOwner.getAddress(), node, OWNER_AMOUNT, protocol);
      expect(await f.settlement.credits(other)).to.equal(protocol);
      expect(await f.settlement.credits(await f.treasury.getAddress())).to.equal(0n);
      await checkInvariants(f, [req]);
    });

    it("a zero protocol fee leaves the treasury nothing", async function () {
      const { f, req, ful } = await loadFixture(fulfilledFixture);
      const treasury = await f.treasury.getAddress();
      await f.settlement.connect(f.owner).setParams({ treasury, challengeWindow: 0, protocolFeeBps: 0 });
      await expect(f.settlement.finalize(req, ful))
        .to.emit(f.settlement, "Settled")
        .withArgs(
          req.requestId,
          ful.node,
          await f.modelOwner.getAddress(),
          FEE - OWNER_AMOUNT,
          OWNER_AMOUNT,
          0,
        );
      expect(await f.settlement.credits(treasury)).to.equal(0n);
      await checkInvariants(f, [req]);
    });
  });

  describe("initialize", function () {
    it("cannot run twice", async function () {
      const f = await loadFixture(deployFixture);
      await expect(
        f.settlement.connect(f.owner).initialize(
          await f.owner.getAddress(),
          {
            treasury: await f.owner.getAddress(),
            challengeWindow: 60,
            protocolFeeBps: 500,
          },
          TEST_PARAMS.disputes,
        ),
      ).to.be.revertedWithCustomError(f.settlement, "InvalidInitialization");
      expect(await f.settlement.deployer()).to.equal(await f.owner.getAddress());
      expect(await f.settlement.owner()).to.equal(await f.owner.getAddress());
    });

    it("only the deployer may initialize a fresh deployment, with valid params", async function () {
      const f = await loadFixture(deployFixture);
      const factory = (await ethers.getContractFactory(
        "Settlement",
        f.other,
      )) as unknown as Settlement__factory;
      const fresh = await factory.deploy(
        f.addresses.inferenceHub,
        f.addresses.modelRegistry,
        f.addresses.nodeRegistry,
      );
      const other = await f.other.getAddress();
      expect(await fresh.deployer()).to.equal(other);
      const p = { treasury: other, challengeWindow: 60, protocolFeeBps: 500 };
      const d = TEST_PARAMS.disputes;
      await expect(fresh.connect(f.owner).initialize(other, p, d))
        .to.be.revertedWithCustomError(fresh, "System__NotDeployer")
        .withArgs(await f.owner.getAddress());
      await expect(
        fresh.connect(f.other).initialize(other, { ...p, protocolFeeBps: 2_001 }, d),
      ).to.be.revertedWithCustomError(fresh, "Settlement__InvalidParams");
      await expect(fresh.connect(f.other).initialize(ZeroAddress, p, d)).to.be.revertedWithCustomError(
        fresh,
        "System__ZeroAddress",
      );
      await expect(fresh.connect(f.other).initialize(other, p, d))
        .to.emit(fresh, "SettlementParamsChanged")
        .withArgs([other, 60, 500]);
      expect(await fresh.owner()).to.equal(other);
    });

    it("the constructor rejects zero addresses", async function () {
      const f = await loadFixture(deployFixture);
      const factory = await ethers.getContractFactory("Settlement");
      const { inferenceHub, modelRegistry, nodeRegistry } = f.addresses;
      for (const args of [
        [ZeroAddress, modelRegistry, nodeRegistry],
        [inferenceHub, ZeroAddress, nodeRegistry],
        [inferenceHub, modelRegistry, ZeroAddress],
      ] as const) {
        await expect(factory.deploy(...args)).to.be.revertedWithCustomError(factory, "System__ZeroAddress");
      }
    });
  });
});
