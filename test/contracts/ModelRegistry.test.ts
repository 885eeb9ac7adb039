import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, keccak256, parseEther, sha256, toUtf8Bytes } from "ethers";
import type { ModelRegistry__factory } from "../../typechain-types";
import type {
  ModelSchemaStruct,
  ModelSchemaStructOutput,
} from "../../typechain-types/contracts/ModelRegistry";
import {
  DTYPE,
  MODEL_FEE,
  MODEL_ID,
  OWNER_SHARE_BPS,
  SAMPLE_INPUT,
  SAMPLE_OUTPUT,
  SCHEMA,
  STATE,
  STATUS,
  deployFixture,
  requestFromTx,
} from "./helpers";

const OTHER_ID = sha256(toUtf8Bytes("the bytes of a second ONNX model"));
const OTHER_URI = "ipfs://bafy-second-model";
const OTHER_FEE = parseEther("0.002");
const OTHER_SHARE = 2_500;
const OTHER_DECIMALS = 4;
const OTHER_SCHEMA = {
  inputs: [
    { name: "pixels", dtype: DTYPE.FLOAT, shape: [-1, 3, 224, 224] },
    { name: "prompt", dtype: DTYPE.STRING, shape: [-1] },
  ],
  outputs: [
    { name: "logits", dtype: DTYPE.DOUBLE, shape: [-1, 1000] },
    { name: "mask", dtype: DTYPE.BOOL, shape: [0] },
    { name: "label", dtype: DTYPE.INT64, shape: [] },
  ],
};

interface PlainSpec {
  name: string;
  dtype: number;
  shape: number[];
}

/** The decoded schema as plain values, for deep comparison. */
function plainSchema(s: ModelSchemaStructOutput): { inputs: PlainSpec[]; outputs: PlainSpec[] } {
  const specs = (xs: ModelSchemaStructOutput["inputs"]) =>
    xs.map((x) => ({ name: x.name, dtype: Number(x.dtype), shape: x.shape.map(Number) }));
  return { inputs: specs(s.inputs), outputs: specs(s.outputs) };
}

/** The schema in the tuple form an event argument decodes to. */
function schemaTuple(s: typeof OTHER_SCHEMA) {
  const specs = (xs: PlainSpec[]) => xs.map((x) => [x.name, x.dtype, x.shape]);
  return [specs(s.inputs), specs(s.outputs)];
}

function spec(name: string, dtype: number = DTYPE.FLOAT, shape: number[] = [-1, 4]): PlainSpec {
  return { name, dtype, shape };
}

describe("ModelRegistry", function () {
  async function withSecondModel() {
    const f = await loadFixture(deployFixture);
    await f.models
      .connect(f.other)
      .registerModel(OTHER_ID, OTHER_URI, OTHER_SCHEMA, OTHER_DECIMALS, OTHER_FEE, OTHER_SHARE);
    return f;
  }

  describe("registerModel", function () {
    it("emits ModelRegistered with every argument, schema included", async function () {
      const f = await loadFixture(deployFixture);
      const other = await f.other.getAddress();
      await expect(
        f.models
          .connect(f.other)
          .registerModel(OTHER_ID, OTHER_URI, OTHER_SCHEMA, OTHER_DECIMALS, OTHER_FEE, OTHER_SHARE),
      )
        .to.emit(f.models, "ModelRegistered")
        .withArgs(
          OTHER_ID,
          other,
          OTHER_URI,
          OTHER_FEE,
          OTHER_SHARE,
          OTHER_DECIMALS,
          schemaTuple(OTHER_SCHEMA),
        );
    });

    it("stores everything getModel returns", async function () {
      const f = await withSecondModel();
      const registeredAt = await time.latest();
      const info = await f.models.getModel(OTHER_ID);
      expect(info.modelId).to.equal(OTHER_ID);
      expect(info.owner).to.equal(await f.other.getAddress());
      expect(info.fee).to.equal(OTHER_FEE);
      expect(info.ownerShareBps).to.equal(OTHER_SHARE);
      expect(info.decimals).to.equal(OTHER_DECIMALS);
      expect(info.deprecated).to.equal(false);
      expect(info.registeredAt).to.equal(registeredAt);
      expect(info.uri).to.equal(OTHER_URI);
      expect(plainSchema(info.schema)).to.deep.equal(OTHER_SCHEMA);
    });

    it("the fixture model reads back as registered by modelOwner", async function () {
      const f = await loadFixture(deployFixture);
      const info = await f.models.getModel(MODEL_ID);
      expect(info.owner).to.equal(await f.modelOwner.getAddress());
      expect(info.fee).to.equal(MODEL_FEE);
      expect(info.ownerShareBps).to.equal(OWNER_SHARE_BPS);
      expect(info.decimals).to.equal(6);
      expect(info.uri).to.equal("gradnet://models/" + MODEL_ID);
      expect(plainSchema(info.schema)).to.deep.equal(SCHEMA);
    });

    it("lists models in registration order", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.models.modelCount()).to.equal(1n);
      expect(await f.models.modelIdAt(0)).to.equal(MODEL_ID);
      await f.models
        .connect(f.other)
        .registerModel(OTHER_ID, OTHER_URI, OTHER_SCHEMA, OTHER_DECIMALS, OTHER_FEE, OTHER_SHARE);
      expect(await f.models.modelCount()).to.equal(2n);
      expect(await f.models.modelIdAt(0)).to.equal(MODEL_ID);
      expect(await f.models.modelIdAt(1)).to.equal(OTHER_ID);
      await expect(f.models.modelIdAt(2)).to.be.revertedWithPanic(0x32);
    });

    it("packs the terms the hub reads", async function () {
      const f = await withSecondModel();
      const t = await f.models.terms(OTHER_ID);
      expect(t.fee).to.equal(OTHER_FEE);
      expect(t.ownerShareBps).to.equal(OTHER_SHARE);
      expect(t.decimals).to.equal(OTHER_DECIMALS);
      expect(t.registered).to.equal(true);
      expect(t.deprecated).to.equal(false);

      const none = await f.models.terms(keccak256("0x01"));
      expect(none.fee).to.equal(0n);
      expect(none.ownerShareBps).to.equal(0n);
      expect(none.decimals).to.equal(0n);
      expect(none.registered).to.equal(false);
      expect(none.deprecated).to.equal(false);
    });

    it("reports isActive, ownerOf and payoutOf", async function () {
      const f = await withSecondModel();
      const other = await f.other.getAddress();
      expect(await f.models.isActive(OTHER_ID)).to.equal(true);
      expect(await f.models.isActive(MODEL_ID)).to.equal(true);
      expect(await f.models.isActive(keccak256("0x01"))).to.equal(false);
      expect(await f.models.ownerOf(OTHER_ID)).to.equal(other);
      expect(await f.models.ownerOf(keccak256("0x01"))).to.equal(ZeroAddress);
      const [payee, share] = await f.models.payoutOf(OTHER_ID);
      expect(payee).to.equal(other);
      expect(share).to.equal(OTHER_SHARE);
      const [p2, s2] = await f.models.payoutOf(MODEL_ID);
      expect(p2).to.equal(await f.modelOwner.getAddress());
      expect(s2).to.equal(OWNER_SHARE_BPS);
    });

    it("accepts the boundary values: share 8000 bps, 18 decimals, zero fee, dimension -1 and 0", async function () {
      const f = await loadFixture(deployFixture);
      const schema = { inputs: [spec("x", DTYPE.INT32, [-1, 0, 7])], outputs: [spec("y", DTYPE.INT64, [])] };
      await expect(f.models.connect(f.other).registerModel(OTHER_ID, OTHER_URI, schema, 18, 0, 8_000))
        .to.emit(f.models, "ModelRegistered")
        .withArgs(OTHER_ID, await f.other.getAddress(), OTHER_URI, 0, 8_000, 18, [
          [["x", DTYPE.INT32, [-1, 0, 7]]],
          [["y", DTYPE.INT64, []]],
        ]);
      expect(await f.models.MAX_OWNER_SHARE_BPS()).to.equal(8_000n);
      expect(await f.models.MAX_DECIMALS()).to.equal(18n);
    });

    it("reverts ZeroModelId for a zero id", async function () {
      const f = await loadFixture(deployFixture);
      await expect(
        f.models.registerModel(ethers.ZeroHash, OTHER_URI, OTHER_SCHEMA, 6, OTHER_FEE, 0),
      ).to.be.revertedWithCustomError(f.models, "ModelRegistry__ZeroModelId");
    });

    it("reverts AlreadyRegistered for the same hash twice, naming the first owner", async function () {
      const f = await withSecondModel();
      await expect(f.models.connect(f.user).registerModel(OTHER_ID, "ipfs://copy", OTHER_SCHEMA, 6, 1, 0))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__AlreadyRegistered")
        .withArgs(OTHER_ID, await f.other.getAddress());
      await expect(f.models.connect(f.modelOwner).registerModel(MODEL_ID, "ipfs://again", SCHEMA, 6, 1, 0))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__AlreadyRegistered")
        .withArgs(MODEL_ID, await f.modelOwner.getAddress());
      expect(await f.models.modelCount()).to.equal(2n);
    });

    it("reverts EmptyUri", async function () {
      const f = await loadFixture(deployFixture);
      await expect(
        f.models.registerModel(OTHER_ID, "", OTHER_SCHEMA, 6, OTHER_FEE, 0),
      ).to.be.revertedWithCustomError(f.models, "ModelRegistry__EmptyUri");
    });

    it("reverts OwnerShareTooHigh above 8000 bps", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.models.registerModel(OTHER_ID, OTHER_URI, OTHER_SCHEMA, 6, OTHER_FEE, 8_001))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__OwnerShareTooHigh")
        .withArgs(8_001, 8_000);
      await expect(f.models.registerModel(OTHER_ID, OTHER_URI, OTHER_SCHEMA, 6, OTHER_FEE, 10_000))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__OwnerShareTooHigh")
        .withArgs(10_000, 8_000);
    });

    it("reverts DecimalsTooHigh above 18", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.models.registerModel(OTHER_ID, OTHER_URI, OTHER_SCHEMA, 19, OTHER_FEE, 0))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__DecimalsTooHigh")
        .withArgs(19, 18);
    });

    it("reverts EmptySchema without inputs or without outputs", async function () {
      const f = await loadFixture(deployFixture);
      await expect(
        f.models.registerModel(OTHER_ID, OTHER_URI, { inputs: [], outputs: [spec("y")] }, 6, 1, 0),
      ).to.be.revertedWithCustomError(f.models, "ModelRegistry__EmptySchema");
      await expect(
        f.models.registerModel(OTHER_ID, OTHER_URI, { inputs: [spec("x")], outputs: [] }, 6, 1, 0),
      ).to.be.revertedWithCustomError(f.models, "ModelRegistry__EmptySchema");
      await expect(
        f.models.registerModel(OTHER_ID, OTHER_URI, { inputs: [], outputs: [] }, 6, 1, 0),
      ).to.be.revertedWithCustomError(f.models, "ModelRegistry__EmptySchema");
    });

    describe("InvalidTensorSpec", function () {
      const cases: {
        what: string;
        schema: ModelSchemaStruct;
        isInput: boolean;
        index: number;
        reason: string;
      }[] = [
        {
          what: "an empty input name",
          schema: { inputs: [spec("")], outputs: [spec("y")] },
          isInput: true,
          index: 0,
          reason: "empty name",
        },
        {
          what: "an empty output name at index 1",
          schema: { inputs: [spec("x")], outputs: [spec("y"), spec("")] },
          isInput: false,
          index: 1,
          reason: "empty name",
        },
        {
          what: "dtype 0",
          schema: { inputs: [spec("x", 0)], outputs: [spec("y")] },
          isInput: true,
          index: 0,
          reason: "unsupported dtype",
        },
        {
          what: "an unsupported output dtype (FLOAT16 = 10)",
          schema: { inputs: [spec("x")], outputs: [spec("y"), spec("z", 10)] },
          isInput: false,
          index: 1,
          reason: "unsupported dtype",
        },
        {
          what: "an unsupported input dtype (UINT8 = 2) at index 1",
          schema: { inputs: [spec("a"), spec("b", 2)], outputs: [spec("y")] },
          isInput: true,
          index: 1,
          reason: "unsupported dtype",
        },
        {
          what: "dimension -2 in an input",
          schema: { inputs: [spec("x", DTYPE.FLOAT, [-1, -2])], outputs: [spec("y")] },
          isInput: true,
          index: 0,
          reason: "dimension below -1",
        },
        {
          what: "a large negative dimension in an output",
          schema: { inputs: [spec("x")], outputs: [spec("y", DTYPE.FLOAT, [-(2 ** 40)])] },
          isInput: false,
          index: 0,
          reason: "dimension below -1",
        },
        {
          what: "a duplicate input name",
          schema: { inputs: [spec("a"), spec("b"), spec("a")], outputs: [spec("y")] },
          isInput: true,
          index: 2,
          reason: "duplicate name",
        },
        {
          what: "a duplicate output name",
          schema: { inputs: [spec("x")], outputs: [spec("y"), spec("y", DTYPE.INT64)] },
          isInput: false,
          index: 1,
          reason: "duplicate name",
        },
      ];
      for (const c of cases) {
        it(`reverts for ${c.what}`, async function () {
          const f = await loadFixture(deployFixture);
          await expect(f.models.registerModel(OTHER_ID, OTHER_URI, c.schema, 6, 1, 0))
            .to.be.revertedWithCustomError(f.models, "ModelRegistry__InvalidTensorSpec")
            .withArgs(c.isInput, c.index, c.reason);
        });
      }

      it("accepts every supported dtype", async function () {
        const f = await loadFixture(deployFixture);
        const all = Object.values(DTYPE).map((d) => spec("t" + d, d, [1]));
        await f.models.registerModel(OTHER_ID, OTHER_URI, { inputs: all, outputs: all }, 6, 1, 0);
        const info = await f.models.getModel(OTHER_ID);
        expect(plainSchema(info.schema)).to.deep.equal({ inputs: all, outputs: all });
      });
    });
  });

  describe("owner actions", function () {
    it("setFee emits ModelFeeChanged and updates the terms", async function () {
      const f = await loadFixture(deployFixture);
      const newFee = parseEther("0.03");
      await expect(f.models.connect(f.modelOwner).setFee(MODEL_ID, newFee))
        .to.emit(f.models, "ModelFeeChanged")
        .withArgs(MODEL_ID, MODEL_FEE, newFee);
      expect((await f.models.terms(MODEL_ID)).fee).to.equal(newFee);
      expect((await f.models.getModel(MODEL_ID)).fee).to.equal(newFee);
      await expect(f.models.connect(f.modelOwner).setFee(MODEL_ID, 0))
        .to.emit(f.models, "ModelFeeChanged")
        .withArgs(MODEL_ID, newFee, 0);
    });

    it("setUri emits ModelUriChanged and updates the uri; an empty uri reverts", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.models.connect(f.modelOwner).setUri(MODEL_ID, "ipfs://moved"))
        .to.emit(f.models, "ModelUriChanged")
        .withArgs(MODEL_ID, "ipfs://moved");
      expect((await f.models.getModel(MODEL_ID)).uri).to.equal("ipfs://moved");
      await expect(f.models.connect(f.modelOwner).setUri(MODEL_ID, "")).to.be.revertedWithCustomError(
        f.models,
        "ModelRegistry__EmptyUri",
      );
      expect((await f.models.getModel(MODEL_ID)).uri).to.equal("ipfs://moved");
    });

    it("transferModelOwnership moves ownership and the payout", async function () {
      const f = await loadFixture(deployFixture);
      const prev = await f.modelOwner.getAddress();
      const next = await f.other.getAddress();
      await expect(f.models.connect(f.modelOwner).transferModelOwnership(MODEL_ID, next))
        .to.emit(f.models, "ModelOwnershipTransferred")
        .withArgs(MODEL_ID, prev, next);
      expect(await f.models.ownerOf(MODEL_ID)).to.equal(next);
      expect((await f.models.getModel(MODEL_ID)).owner).to.equal(next);
      const [payee, share] = await f.models.payoutOf(MODEL_ID);
      expect(payee).to.equal(next);
      expect(share).to.equal(OWNER_SHARE_BPS);

      await expect(f.models.connect(f.modelOwner).setFee(MODEL_ID, 1))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__NotModelOwner")
        .withArgs(MODEL_ID, prev, next);
      await expect(f.models.connect(f.other).setFee(MODEL_ID, 1))
        .to.emit(f.models, "ModelFeeChanged")
        .withArgs(MODEL_ID, MODEL_FEE, 1);
    });

    it("transferModelOwnership to the zero address reverts ZeroAddress", async function () {
      const f = await loadFixture(deployFixture);
      await expect(
        f.models.connect(f.modelOwner).transferModelOwnership(MODEL_ID, ZeroAddress),
      ).to.be.revertedWithCustomError(f.models, "ModelRegistry__ZeroAddress");
      expect(await f.models.ownerOf(MODEL_ID)).to.equal(await f.modelOwner.getAddress());
    });

    it("the model owner deprecates: event, isActive false, terms and getModel flag it", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.models.connect(f.modelOwner).deprecate(MODEL_ID))
        .to.emit(f.models, "ModelDeprecated")
        .withArgs(MODEL_ID);
      expect(await f.models.isActive(MODEL_ID)).to.equal(false);
      const t = await f.models.terms(MODEL_ID);
      expect(t.deprecated).to.equal(true);
      expect(t.registered).to.equal(true);
      expect((await f.models.getModel(MODEL_ID)).deprecated).to.equal(true);
    });

    it("governance (the registry owner) may deprecate any model", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.models.owner()).to.equal(await f.owner.getAddress());
      await expect(f.models.connect(f.owner).deprecate(MODEL_ID))
        .to.emit(f.models, "ModelDeprecated")
        .withArgs(MODEL_ID);
      expect(await f.models.isActive(MODEL_ID)).to.equal(false);
    });

    it("a second deprecate reverts AlreadyDeprecated, from either party", async function () {
      const f = await loadFixture(deployFixture);
      await f.models.connect(f.modelOwner).deprecate(MODEL_ID);
      await expect(f.models.connect(f.modelOwner).deprecate(MODEL_ID))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__AlreadyDeprecated")
        .withArgs(MODEL_ID);
      await expect(f.models.connect(f.owner).deprecate(MODEL_ID))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__AlreadyDeprecated")
        .withArgs(MODEL_ID);
    });

    it("a stranger gets NotModelOwner from setFee, setUri, transferModelOwnership and deprecate", async function () {
      const f = await loadFixture(deployFixture);
      const stranger = await f.user.getAddress();
      const owner = await f.modelOwner.getAddress();
      const m = f.models.connect(f.user);
      for (const call of [
        () => m.setFee(MODEL_ID, 1),
        () => m.setUri(MODEL_ID, "ipfs://mine"),
        () => m.transferModelOwnership(MODEL_ID, stranger),
        () => m.deprecate(MODEL_ID),
      ]) {
        await expect(call())
          .to.be.revertedWithCustomError(f.models, "ModelRegistry__NotModelOwner")
          .withArgs(MODEL_ID, stranger, owner);
      }
      // Governance may deprecate but not otherwise act for the model's owner.
      await expect(f.models.connect(f.owner).setFee(MODEL_ID, 1))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__NotModelOwner")
        .withArgs(MODEL_ID, await f.owner.getAddress(), owner);
      const t = await f.models.terms(MODEL_ID);
      expect(t.fee).to.equal(MODEL_FEE);
      expect(t.deprecated).to.equal(false);
    });

    it("an unknown model reverts NotRegistered everywhere", async function () {
      const f = await loadFixture(deployFixture);
      const m = f.models.connect(f.modelOwner);
      for (const call of [
        () => m.setFee(OTHER_ID, 1),
        () => m.setUri(OTHER_ID, "ipfs://x"),
        () => m.transferModelOwnership(OTHER_ID, ZeroAddress),
        () => m.deprecate(OTHER_ID),
        () => m.getModel(OTHER_ID),
      ]) {
        await expect(call())
          .to.be.revertedWithCustomError(f.models, "ModelRegistry__NotRegistered")
          .withArgs(OTHER_ID);
      }
      await expect(f.models.connect(f.owner).deprecate(OTHER_ID))
        .to.be.revertedWithCustomError(f.models, "ModelRegistry__NotRegistered")
        .withArgs(OTHER_ID);
    });
  });

  describe("as the hub sees it", function () {
    it("a deprecated model takes no new requests", async function () {
      const f = await loadFixture(deployFixture);
      await f.models.connect(f.owner).deprecate(MODEL_ID);
      await expect(f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }))
        .to.be.revertedWithCustomError(f.hub, "Hub__ModelNotActive")
        .withArgs(MODEL_ID);
      await expect(f.hub.connect(f.user).requestInference(OTHER_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }))
        .to.be.revertedWithCustomError(f.hub, "Hub__ModelNotActive")
        .withArgs(OTHER_ID);
    });

    it("a request made before deprecation is still answered", async function () {
      const f = await loadFixture(deployFixture);
      const req = await requestFromTx(
        f,
        await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
      );
      await f.models.connect(f.modelOwner).deprecate(MODEL_ID);
      await f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, keccak256(SAMPLE_OUTPUT));
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Fulfilled);
    });

    it("a fee change applies to new requests only", async function () {
      const f = await loadFixture(deployFixture);
      const before = await requestFromTx(
        f,
        await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
      );
      const newFee = MODEL_FEE * 3n;
      await f.models.connect(f.modelOwner).setFee(MODEL_ID, newFee);
      await expect(f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }))
        .to.be.revertedWithCustomError(f.hub, "Hub__FeeTooLow")
        .withArgs(MODEL_ID, MODEL_FEE, newFee);
      await expect(f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: newFee - 1n }))
        .to.be.revertedWithCustomError(f.hub, "Hub__FeeTooLow")
        .withArgs(MODEL_ID, newFee - 1n, newFee);
      const after = await requestFromTx(
        f,
        await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: newFee }),
      );
      expect(after.fee).to.equal(newFee);
      // The earlier request keeps the fee it escrowed and can still be answered.
      expect(before.fee).to.equal(MODEL_FEE);
      await f.hub.connect(f.node1).fulfill(before, STATUS.Success, SAMPLE_OUTPUT, keccak256(SAMPLE_OUTPUT));
      expect(await f.hub.requestState(before.requestId)).to.equal(STATE.Fulfilled);
      expect(await ethers.provider.getBalance(f.addresses.inferenceHub)).to.equal(MODEL_FEE + newFee);
    });

    it("a fee lowered to zero admits free requests", async function () {
      const f = await loadFixture(deployFixture);
      await f.models.connect(f.modelOwner).setFee(MODEL_ID, 0);
      const req = await requestFromTx(
        f,
        await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: 0 }),
      );
      expect(req.fee).to.equal(0n);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Pending);
    });
  });

  describe("initialize", function () {
    it("cannot run twice", async function () {
      const f = await loadFixture(deployFixture);
      await expect(
        f.models.connect(f.owner).initialize(await f.owner.getAddress()),
      ).to.be.revertedWithCustomError(f.models, "InvalidInitialization");
    });

    it("only the deployer may initialize a fresh deployment", async function () {
      const f = await loadFixture(deployFixture);
      const factory = (await ethers.getContractFactory(
        "ModelRegistry",
        f.other,
      )) as unknown as ModelRegistry__factory;
      const fresh = await factory.deploy();
      const deployerAddress = await f.other.getAddress();
      expect(await fresh.deployer()).to.equal(deployerAddress);
      await expect(fresh.connect(f.owner).initialize(await f.owner.getAddress()))
        .to.be.revertedWithCustomError(fresh, "System__NotDeployer")
        .withArgs(await f.owner.getAddress());
      await expect(fresh.connect(f.other).initialize(ZeroAddress)).to.be.revertedWithCustomError(
        fresh,
        "System__ZeroAddress",
      );
      await fresh.connect(f.other).initialize(await f.user.getAddress());
      expect(await fresh.owner()).to.equal(await f.user.getAddress());
    });

    it("the fixed-address registry reports its deployer and owner", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.models.deployer()).to.equal(await f.owner.getAddress());
      expect(await f.models.owner()).to.equal(await f.owner.getAddress());
    });
  });
});
