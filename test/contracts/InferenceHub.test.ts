import { expect } from "chai";
import hre from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import {
  keccak256,
  sha256,
  toUtf8Bytes,
  hexlify,
  ZeroHash,
  type BaseContract,
  type ContractTransactionResponse,
  type Signer,
} from "ethers";
import {
  CALLBACK,
  MODEL_FEE,
  MODEL_ID,
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

const OUTPUT_HASH = keccak256(SAMPLE_OUTPUT);

async function eoaRequest(f: Fixture, from: Signer = f.user, fee = MODEL_FEE): Promise<RequestStruct> {
  const tx = await f.hub.connect(from).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: fee });
  return requestFromTx(f, tx);
}

/** What the test consumers in contracts/test/HostileConsumers.sol have in common. */
interface TestConsumer extends BaseContract {
  connect(runner: Signer): TestConsumer;
  request(
    modelId: string,
    input: string,
    callbackGasLimit: number,
    overrides: { value: bigint },
  ): Promise<ContractTransactionResponse>;
}

async function deployConsumer(f: Fixture, name: string): Promise<TestConsumer> {
  const c = await hre.ethers.deployContract(name, [f.addresses.inferenceHub]);
  await c.waitForDeployment();
  return c as unknown as TestConsumer;
}

/** A request from a test consumer contract that asks for a callback. */
async function consumerRequest(f: Fixture, consumer: TestConsumer, gas = 100_000): Promise<RequestStruct> {
  const tx = await consumer.connect(f.user).request(MODEL_ID, SAMPLE_INPUT, gas, { value: MODEL_FEE });
  return requestFromTx(f, tx);
}

describe("InferenceHub", () => {
  describe("requestInference", () => {
    it("escrows the fee, stores one commitment and emits the full preimage", async () => {
      const f = await loadFixture(deployFixture);
      const user = await f.user.getAddress();
      const tx = f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE });
      await expect(tx).to.changeEtherBalances([f.user, f.hub], [-MODEL_FEE, MODEL_FEE]);
      const req = await requestFromTx(f, await tx);
      const now = BigInt(await time.latest());
      expect(req).to.deep.equal({
        requestId: 1n,
        modelId: MODEL_ID,
        requester: user,
        callbackGasLimit: 0n,
        deadline: now + BigInt(TEST_PARAMS.hub.requestTimeout),
        fee: MODEL_FEE,
        inputHash: sha256(SAMPLE_INPUT),
        inputIsRef: false,
        redundancy: 1n,
      });
      await expect(tx)
        .to.emit(f.hub, "InferenceRequested")
        .withArgs(1n, MODEL_ID, user, anyValue, SAMPLE_INPUT);
      expect(await f.hub.requestState(1n)).to.equal(STATE.Pending);
      expect(await f.hub.requestCount()).to.equal(1n);
      // The slot holds the state in its top byte and the commitment in the rest.
      const slot = BigInt(await f.hub.commitmentOf(1n));
      const commitment = BigInt(await f.hub.hashRequest(req));
      const mask = (1n << 248n) - 1n;
      expect(slot >> 248n).to.equal(BigInt(STATE.Pending));
      expect(slot & mask).to.equal(commitment & mask);
    });

    it("accepts more than the fee and escrows all of it", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f, f.user, MODEL_FEE * 3n);
      expect(req.fee).to.equal(MODEL_FEE * 3n);
      expect(await hre.ethers.provider.getBalance(f.addresses.inferenceHub)).to.equal(MODEL_FEE * 3n);
    });

    it("takes a large input by sha256 and URI", async () => {
      const f = await loadFixture(deployFixture);
      const digest = sha256(toUtf8Bytes("big input bytes"));
      const uri = "gradnet://store/" + digest;
      const tx = await f.hub
        .connect(f.user)
        .requestInferenceRef(MODEL_ID, digest, uri, 0, { value: MODEL_FEE });
      const req = await requestFromTx(f, tx);
      expect(req.inputHash).to.equal(digest);
      expect(req.inputIsRef).to.equal(true);
      await expect(tx)
        .to.emit(f.hub, "InferenceRequested")
        .withArgs(req.requestId, MODEL_ID, await f.user.getAddress(), anyValue, hexlify(toUtf8Bytes(uri)));
    });

    it("rejects bad requests with typed errors", async () => {
      const f = await loadFixture(deployFixture);
      const hub = f.hub.connect(f.user);
      const unknown = sha256(toUtf8Bytes("no such model"));
      await expect(hub.requestInference(unknown, SAMPLE_INPUT, 0, { value: MODEL_FEE }))
        .to.be.revertedWithCustomError(f.hub, "Hub__ModelNotActive")
        .withArgs(unknown);
      await expect(hub.requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE - 1n }))
        .to.be.revertedWithCustomError(f.hub, "Hub__FeeTooLow")
        .withArgs(MODEL_ID, MODEL_FEE - 1n, MODEL_FEE);
      await expect(
        hub.requestInference(MODEL_ID, "0x", 0, { value: MODEL_FEE }),
      ).to.be.revertedWithCustomError(f.hub, "Hub__EmptyInput");
      const max = TEST_PARAMS.hub.maxInputBytes;
      const big = hexlify(new Uint8Array(max + 1).fill(1));
      await expect(hub.requestInference(MODEL_ID, big, 0, { value: MODEL_FEE }))
        .to.be.revertedWithCustomError(f.hub, "Hub__InputTooLarge")
        .withArgs(max + 1, max);
      const tooMuchGas = TEST_PARAMS.hub.maxCallbackGasLimit + 1;
      await expect(hub.requestInference(MODEL_ID, SAMPLE_INPUT, tooMuchGas, { value: MODEL_FEE }))
        .to.be.revertedWithCustomError(f.hub, "Hub__CallbackGasTooHigh")
        .withArgs(tooMuchGas, TEST_PARAMS.hub.maxCallbackGasLimit);
      await expect(
        hub.requestInferenceRef(MODEL_ID, ZeroHash, "x", 0, { value: MODEL_FEE }),
      ).to.be.revertedWithCustomError(f.hub, "Hub__ZeroInputHash");
      await expect(
        hub.requestInferenceRef(MODEL_ID, sha256("0x01"), "", 0, { value: MODEL_FEE }),
      ).to.be.revertedWithCustomError(f.hub, "Hub__EmptyInputUri");
      await f.models.connect(f.modelOwner).deprecate(MODEL_ID);
      await expect(hub.requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }))
        .to.be.revertedWithCustomError(f.hub, "Hub__ModelNotActive")
        .withArgs(MODEL_ID);
      expect(await f.hub.requestCount()).to.equal(0n);
    });

    it("takes an input of exactly the maximum size", async () => {
      const f = await loadFixture(deployFixture);
      const exact = hexlify(new Uint8Array(TEST_PARAMS.hub.maxInputBytes).fill(7));
      await expect(f.hub.connect(f.user).requestInference(MODEL_ID, exact, 0, { value: MODEL_FEE })).to.emit(
        f.hub,
        "InferenceRequested",
      );
    });
  });

  describe("fulfill", () => {
    it("records the node and outputHash, and emits the output", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      const node = await f.node1.getAddress();
      const tx = f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH);
      await expect(tx).to.changeEtherBalances([f.hub, f.settlement], [0n, 0n]);
      await expect(tx)
        .to.emit(f.hub, "InferenceFulfilled")
        .withArgs(
          req.requestId,
          node,
          STATUS.Success,
          OUTPUT_HASH,
          anyValue,
          CALLBACK.NotRequested,
          SAMPLE_OUTPUT,
        );
      const ful = await fulfillmentFromTx(f, await tx, req.requestId);
      expect(ful.fulfilledAt).to.equal(BigInt(await time.latest()));
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Fulfilled);
      const slot = BigInt(await f.hub.commitmentOf(req.requestId));
      const mask = (1n << 248n) - 1n;
      expect(slot & mask).to.equal(BigInt(await f.hub.hashFulfillment(req, ful)) & mask);
    });

    it("refuses everyone but an active inference node", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      await expect(f.hub.connect(f.other).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH))
        .to.be.revertedWithCustomError(f.hub, "Hub__NotInferenceNode")
        .withArgs(await f.other.getAddress());
      // A node that unbonds below the minimum stops being active.
      await f.nodes.connect(f.node1).startUnbonding(1n);
      await expect(
        f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH),
      ).to.be.revertedWithCustomError(f.hub, "Hub__NotInferenceNode");
    });

    it("checks the commitment, the state and the deadline", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      const hub = f.hub.connect(f.node1);
      for (const forged of [
        { ...req, fee: req.fee - 1n },
        { ...req, callbackGasLimit: 1n },
        { ...req, inputHash: ZeroHash },
        { ...req, deadline: req.deadline + 1000n },
      ]) {
        await expect(hub.fulfill(forged, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH))
          .to.be.revertedWithCustomError(f.hub, "Hub__CommitmentMismatch")
          .withArgs(req.requestId);
      }
      await expect(hub.fulfill({ ...req, requestId: 99n }, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH))
        .to.be.revertedWithCustomError(f.hub, "Hub__UnknownRequest")
        .withArgs(99n);
      await hub.fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH);
      await expect(f.hub.connect(f.node2).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Fulfilled);

      const late = await eoaRequest(f);
      await time.increaseTo(late.deadline + 1n);
      await expect(hub.fulfill(late, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH))
        .to.be.revertedWithCustomError(f.hub, "Hub__RequestExpired")
        .withArgs(late.requestId, late.deadline);
    });

    it("accepts a fulfilment in the deadline's own second", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      await time.setNextBlockTimestamp(req.deadline);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH)).to.emit(
        f.hub,
        "InferenceFulfilled",
      );
    });

    it("requires outputHash = keccak256(output) for inline outputs", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      const hub = f.hub.connect(f.node1);
      await expect(hub.fulfill(req, STATUS.Success, SAMPLE_OUTPUT, ZeroHash))
        .to.be.revertedWithCustomError(f.hub, "Hub__OutputHashMismatch")
        .withArgs(req.requestId, ZeroHash, OUTPUT_HASH);
      await expect(hub.fulfill(req, STATUS.Success, "0x", keccak256("0x")))
        .to.be.revertedWithCustomError(f.hub, "Hub__EmptyOutput")
        .withArgs(req.requestId);
      const reason = toUtf8Bytes("bad");
      await expect(hub.fulfill(req, STATUS.InvalidInput, reason, ZeroHash)).to.be.revertedWithCustomError(
        f.hub,
        "Hub__OutputHashMismatch",
      );
    });

    it("takes a large output as a URI with the hash of the stored bytes", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      const storedHash = keccak256(toUtf8Bytes("a large canonical output stored off chain"));
      const pointer = hre.ethers.AbiCoder.defaultAbiCoder().encode(["string"], ["gradnet://store/abc"]);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.SuccessOffchain, "0x", storedHash))
        .to.be.revertedWithCustomError(f.hub, "Hub__EmptyOutput")
        .withArgs(req.requestId);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.SuccessOffchain, pointer, storedHash))
        .to.emit(f.hub, "InferenceFulfilled")
        .withArgs(req.requestId, anyValue, STATUS.SuccessOffchain, storedHash, anyValue, anyValue, pointer);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Fulfilled);
    });

    it("an error status ends the request and credits the fee back to the requester", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      const reason = toUtf8Bytes("input: expected shape [-1,4], got [1,3]");
      const tx = f.hub.connect(f.node1).fulfill(req, STATUS.InvalidInput, reason, keccak256(reason));
      await expect(tx).to.changeEtherBalances([f.hub, f.settlement], [-MODEL_FEE, MODEL_FEE]);
      await expect(tx)
        .to.emit(f.hub, "RequestRefunded")
        .withArgs(req.requestId, req.requester, MODEL_FEE, STATE.Failed)
        .and.to.emit(f.settlement, "RefundCredited")
        .withArgs(req.requestId, req.requester, MODEL_FEE);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Failed);
      expect(await f.settlement.credits(req.requester)).to.equal(MODEL_FEE);
      await expect(f.hub.refundExpired(req))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Failed);
    });
  });

  describe("refundExpired", () => {
    it("refunds only after the deadline, exactly once, to the requester's credit", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      await expect(f.hub.connect(f.other).refundExpired(req))
        .to.be.revertedWithCustomError(f.hub, "Hub__NotExpired")
        .withArgs(req.requestId, req.deadline);
      await time.increaseTo(req.deadline + 1n);
      await expect(f.hub.connect(f.other).refundExpired({ ...req, requester: await f.other.getAddress() }))
        .to.be.revertedWithCustomError(f.hub, "Hub__CommitmentMismatch")
        .withArgs(req.requestId);
      const tx = f.hub.connect(f.other).refundExpired(req);
      await expect(tx).to.changeEtherBalances([f.hub, f.settlement, f.other], [-MODEL_FEE, MODEL_FEE, 0n]);
      await expect(tx)
        .to.emit(f.hub, "RequestRefunded")
        .withArgs(req.requestId, req.requester, MODEL_FEE, STATE.Refunded);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Refunded);
      await expect(f.hub.refundExpired(req))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Refunded);
      await expect(f.settlement.connect(f.user).withdraw(await f.user.getAddress())).to.changeEtherBalances(
        [f.settlement, f.user],
        [-MODEL_FEE, MODEL_FEE],
      );
    });

    it("cannot refund a fulfilled request", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      await f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH);
      await time.increaseTo(req.deadline + 1n);
      await expect(f.hub.refundExpired(req))
        .to.be.revertedWithCustomError(f.hub, "Hub__WrongState")
        .withArgs(req.requestId, STATE.Fulfilled);
    });
  });

  describe("release", () => {
    it("answers only the settlement contract", async () => {
      const f = await loadFixture(deployFixture);
      const req = await eoaRequest(f);
      const ful = { node: await f.node1.getAddress(), outputHash: OUTPUT_HASH, fulfilledAt: 0n };
      await expect(f.hub.connect(f.user).release(req, ful))
        .to.be.revertedWithCustomError(f.hub, "Hub__OnlySettlement")
        .withArgs(await f.user.getAddress());
    });
  });

  describe("fulfillBatch", () => {
    it("records many results, skips those already answered or expired", async () => {
      const f = await loadFixture(deployFixture);
      const reqs: RequestStruct[] = [];
      for (let i = 0; i < 4; i++) reqs.push(await eoaRequest(f));
      const item = (r: RequestStruct) => ({
        request: r,
        status: STATUS.Success,
        output: SAMPLE_OUTPUT,
        outputHash: OUTPUT_HASH,
      });
      await f.hub.connect(f.node2).fulfill(reqs[1]!, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH);
      const items = reqs.map(item);
      expect(await f.hub.connect(f.node1).fulfillBatch.staticCall(items)).to.equal(3n);
      const tx = await f.hub.connect(f.node1).fulfillBatch(items);
      const receipt = await tx.wait();
      const fulfilled = receipt!.logs
        .map((l) => f.hub.interface.parseLog(l))
        .filter((p) => p?.name === "InferenceFulfilled")
        .map((p) => p!.args.requestId as bigint);
      expect(fulfilled).to.deep.equal([reqs[0]!.requestId, reqs[2]!.requestId, reqs[3]!.requestId]);
      for (const r of reqs) expect(await f.hub.requestState(r.requestId)).to.equal(STATE.Fulfilled);

      const late = await eoaRequest(f);
      await time.increaseTo(late.deadline + 1n);
      expect(await f.hub.connect(f.node1).fulfillBatch.staticCall([item(late)])).to.equal(0n);
    });

    it("mixes success and error answers, and reverts on a forged item", async () => {
      const f = await loadFixture(deployFixture);
      const a = await eoaRequest(f);
      const b = await eoaRequest(f, f.other);
      const reason = toUtf8Bytes("model failed");
      const tx = f.hub.connect(f.node1).fulfillBatch([
        { request: a, status: STATUS.Success, output: SAMPLE_OUTPUT, outputHash: OUTPUT_HASH },
        { request: b, status: STATUS.ModelFailed, output: reason, outputHash: keccak256(reason) },
      ]);
      await expect(tx).to.changeEtherBalances([f.hub, f.settlement], [-MODEL_FEE, MODEL_FEE]);
      expect(await f.hub.requestState(a.requestId)).to.equal(STATE.Fulfilled);
      expect(await f.hub.requestState(b.requestId)).to.equal(STATE.Failed);
      expect(await f.settlement.credits(b.requester)).to.equal(MODEL_FEE);

      const c = await eoaRequest(f);
      await expect(
        f.hub.connect(f.node1).fulfillBatch([
          {
            request: { ...c, fee: 1n },
            status: STATUS.Success,
            output: SAMPLE_OUTPUT,
            outputHash: OUTPUT_HASH,
          },
        ]),
      )
        .to.be.revertedWithCustomError(f.hub, "Hub__CommitmentMismatch")
        .withArgs(c.requestId);
      await expect(f.hub.connect(f.other).fulfillBatch([])).to.be.revertedWithCustomError(
        f.hub,
        "Hub__NotInferenceNode",
      );
    });
  });

  describe("callbacks", () => {
    it("delivers the output to a consumer with the exact result", async () => {
      const f = await loadFixture(deployFixture);
      const consumer = await deployConsumer(f, "StoringConsumer");
      const req = await consumerRequest(f, consumer, 150_000);
      expect(req.requester).to.equal(await consumer.getAddress());
      const out = encodeTensors([floatTensor("scores", [11n, -22n, 33n])]);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.Success, out, keccak256(out)))
        .to.emit(f.hub, "InferenceFulfilled")
        .withArgs(req.requestId, anyValue, STATUS.Success, keccak256(out), anyValue, CALLBACK.Success, out);
      const c = consumer as unknown as Record<string, () => Promise<bigint>>;
      expect([await c.a!(), await c.b!(), await c.c!(), await c.lastRequestId!()]).to.deep.equal([
        11n,
        -22n,
        33n,
        req.requestId,
      ]);
    });

    it("tells the consumer about an error answer", async () => {
      const f = await loadFixture(deployFixture);
      const consumer = await deployConsumer(f, "StoringConsumer");
      const req = await consumerRequest(f, consumer, 150_000);
      const reason = toUtf8Bytes("model failed: out of memory");
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.ModelFailed, reason, keccak256(reason)))
        .to.emit(f.hub, "InferenceFulfilled")
        .withArgs(
          req.requestId,
          anyValue,
          STATUS.ModelFailed,
          anyValue,
          anyValue,
          CALLBACK.Success,
          anyValue,
        );
      const c = consumer as unknown as Record<string, () => Promise<bigint>>;
      expect(await c.lastStatus!()).to.equal(BigInt(STATUS.ModelFailed));
      expect(await f.settlement.credits(await consumer.getAddress())).to.equal(MODEL_FEE);
    });

    const hostile: [string, number][] = [
      ["RevertingConsumer", CALLBACK.Reverted],
      ["GasBurningConsumer", CALLBACK.Reverted],
      ["ReturnBombConsumer", CALLBACK.Success],
    ];
    for (const [name, expected] of hostile) {
      it(`a ${name} cannot block fulfilment, refund or settlement`, async () => {
        const f = await loadFixture(deployFixture);
        const consumer = await deployConsumer(f, name);
        const gasLimit = 500_000;
        const req = await consumerRequest(f, consumer, gasLimit);
        const tx = await f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH);
        await expect(tx)
          .to.emit(f.hub, "InferenceFulfilled")
          .withArgs(req.requestId, anyValue, STATUS.Success, OUTPUT_HASH, anyValue, expected, anyValue);
        // The node paid for at most the callback's limit on top of the hub's own work.
        const receipt = await tx.wait();
        expect(receipt!.gasUsed).to.be.lessThan(BigInt(gasLimit) + 150_000n);
        const ful = await fulfillmentFromTx(f, tx, req.requestId);
        await time.increase(TEST_PARAMS.settlement.challengeWindow);
        await expect(f.settlement.finalize(req, ful)).to.emit(f.settlement, "Settled");

        // Another request from the same consumer expires and is still refunded.
        const late = await consumerRequest(f, consumer, gasLimit);
        await time.increaseTo(late.deadline + 1n);
        await expect(f.hub.refundExpired(late)).to.emit(f.hub, "RequestRefunded");
        expect(await f.settlement.credits(await consumer.getAddress())).to.equal(MODEL_FEE);
      });
    }

    it("a requester without code is recorded as NoCode, and fulfilment succeeds", async () => {
      const f = await loadFixture(deployFixture);
      const consumer = await deployConsumer(f, "RevertingConsumer");
      const req = await consumerRequest(f, consumer, 100_000);
      // As if the contract had been destroyed after asking.
      await hre.network.provider.send("hardhat_setCode", [await consumer.getAddress(), "0x"]);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH))
        .to.emit(f.hub, "InferenceFulfilled")
        .withArgs(req.requestId, anyValue, anyValue, anyValue, anyValue, CALLBACK.NoCode, anyValue);
    });

    it("an EOA that asks for a callback gets NoCode", async () => {
      const f = await loadFixture(deployFixture);
      const tx = await f.hub
        .connect(f.user)
        .requestInference(MODEL_ID, SAMPLE_INPUT, 50_000, { value: MODEL_FEE });
      const req = await requestFromTx(f, tx);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH))
        .to.emit(f.hub, "InferenceFulfilled")
        .withArgs(req.requestId, anyValue, anyValue, anyValue, anyValue, CALLBACK.NoCode, anyValue);
    });

    it("a node cannot starve the callback: too little gas reverts the fulfilment", async () => {
      const f = await loadFixture(deployFixture);
      const consumer = await deployConsumer(f, "GasBurningConsumer");
      const gasLimit = 1_000_000;
      const req = await consumerRequest(f, consumer, gasLimit);
      await expect(
        f.hub
          .connect(f.node1)
          .fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH, { gasLimit: 900_000 }),
      )
        .to.be.revertedWithCustomError(f.hub, "Hub__InsufficientGasForCallback")
        .withArgs(req.requestId, gasLimit);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Pending);
      // With enough gas the burner gets its full limit, and the fulfilment still lands.
      const ok = await f.hub
        .connect(f.node1)
        .fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH, { gasLimit: 1_200_000 });
      const receipt = await ok.wait();
      expect(receipt!.gasUsed).to.be.greaterThan(BigInt(gasLimit));
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Fulfilled);
    });

    it("a consumer re-entering the hub cannot fulfil anything", async () => {
      const f = await loadFixture(deployFixture);
      const consumer = await deployConsumer(f, "ReentrantConsumer");
      const victim = await eoaRequest(f);
      const c = consumer as unknown as {
        setTarget(r: RequestStruct): Promise<unknown>;
        reentryFailed(): Promise<boolean>;
      };
      await c.setTarget(victim);
      const req = await consumerRequest(f, consumer, 300_000);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, OUTPUT_HASH))
        .to.emit(f.hub, "InferenceFulfilled")
        .withArgs(req.requestId, anyValue, anyValue, anyValue, anyValue, CALLBACK.Success, anyValue);
      expect(await c.reentryFailed()).to.equal(true);
      expect(await f.hub.requestState(victim.requestId)).to.equal(STATE.Pending);
    });

    it("only the hub can call a consumer's rawFulfillInference", async () => {
      const f = await loadFixture(deployFixture);
      const consumer = await deployConsumer(f, "StoringConsumer");
      await expect(
        (
          consumer.connect(f.user) as unknown as { rawFulfillInference(...a: unknown[]): Promise<unknown> }
        ).rawFulfillInference(1n, 0, SAMPLE_OUTPUT, OUTPUT_HASH),
      )
        .to.be.revertedWithCustomError(consumer, "Consumer__OnlyHub")
        .withArgs(await f.user.getAddress());
    });
  });

  describe("ClassifierConsumer (example dApp)", () => {
    it("asks the classifier and stores the winning class", async () => {
      const f = await loadFixture(deployFixture);
      const factory = await hre.ethers.getContractFactory("ClassifierConsumer");
      const app = await factory.deploy(f.addresses.inferenceHub, MODEL_ID, "probabilities");
      const tx = await app
        .connect(f.user)
        .classify([5_100000n, 3_500000n, 1_400000n, 200000n], 6, { value: MODEL_FEE });
      const req = await requestFromTx(f, tx);
      await expect(tx)
        .to.emit(app, "ClassificationRequested")
        .withArgs(req.requestId, await f.user.getAddress());
      expect(req.requester).to.equal(await app.getAddress());
      expect(req.callbackGasLimit).to.equal(await app.CALLBACK_GAS_LIMIT());
      // The input the app built is the canonical tensor form.
      expect(req.inputHash).to.equal(sha256(SAMPLE_INPUT));

      // Outputs arrive sorted by name: the scores are found by name, not position.
      const out = encodeTensors([
        { name: "label", dtype: 7, decimals: 0, shape: [1], values: [1n], strings: [] },
        floatTensor("probabilities", [100000n, 850000n, 50000n]),
      ]);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.Success, out, keccak256(out)))
        .to.emit(app, "Classified")
        .withArgs(req.requestId, STATUS.Success, 1, 850000n);
      const c = await app.classifications(req.requestId);
      expect([c.status, c.answered, c.label, c.score, c.outputHash]).to.deep.equal([
        BigInt(STATUS.Success),
        true,
        1n,
        850000n,
        keccak256(out),
      ]);
    });

    it("records an error answer and lets its owner collect the refund", async () => {
      const f = await loadFixture(deployFixture);
      const factory = await hre.ethers.getContractFactory("ClassifierConsumer", f.owner);
      const app = await factory.deploy(f.addresses.inferenceHub, MODEL_ID, "probabilities");
      const req = await requestFromTx(
        f,
        await app.connect(f.user).classify([1n, 2n, 3n], 6, { value: MODEL_FEE }),
      );
      const reason = toUtf8Bytes("input: expected 4 features, got 3");
      await f.hub.connect(f.node1).fulfill(req, STATUS.InvalidInput, reason, keccak256(reason));
      const c = await app.classifications(req.requestId);
      expect([c.status, c.answered]).to.deep.equal([BigInt(STATUS.InvalidInput), true]);
      await expect(app.connect(f.user).withdrawRefunds(f.addresses.settlement))
        .to.be.revertedWithCustomError(app, "Classifier__OnlyOwner")
        .withArgs(await f.user.getAddress());
      await expect(app.connect(f.owner).withdrawRefunds(f.addresses.settlement)).to.changeEtherBalances(
        [f.settlement, f.owner],
        [-MODEL_FEE, MODEL_FEE],
      );
    });
  });

  describe("governance", () => {
    it("only the owner changes parameters, and bad values are refused", async () => {
      const f = await loadFixture(deployFixture);
      const p = { maxInputBytes: 100, maxCallbackGasLimit: 10, requestTimeout: 5 };
      await expect(f.hub.connect(f.user).setParams(p)).to.be.revertedWithCustomError(
        f.hub,
        "OwnableUnauthorizedAccount",
      );
      await expect(f.hub.setParams({ ...p, maxInputBytes: 0 })).to.be.revertedWithCustomError(
        f.hub,
        "Hub__InvalidParams",
      );
      await expect(f.hub.setParams({ ...p, requestTimeout: 0 })).to.be.revertedWithCustomError(
        f.hub,
        "Hub__InvalidParams",
      );
      await expect(f.hub.setParams(p)).to.emit(f.hub, "HubParamsChanged");
      const got = await f.hub.params();
      expect([got.maxInputBytes, got.maxCallbackGasLimit, got.requestTimeout]).to.deep.equal([100n, 10n, 5n]);
    });
  });
});
