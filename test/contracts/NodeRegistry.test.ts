import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, setBalance, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, keccak256, parseEther, type Signer } from "ethers";
import type { NodeRegistry__factory } from "../../typechain-types";
import { DEVNET_PARAMS } from "../../deploy/config";
import {
  MODEL_FEE,
  MODEL_ID,
  ROLE,
  SAMPLE_INPUT,
  SAMPLE_OUTPUT,
  STATE,
  STATUS,
  deployFixture,
  requestFromTx,
} from "./helpers";

const P = DEVNET_PARAMS.stake;
const ONE = parseEther("1");
const UNBONDING_DELAY = BigInt(P.unbondingDelay);
const JAIL_PERIOD = BigInt(P.jailPeriod);

function stakeTuple(p: typeof P) {
  return [p.minStakeInference, p.minStakeVerifier, p.minStakeData, p.unbondingDelay, p.jailPeriod];
}

/** Pin the next block's timestamp, so that values derived from it are exact. */
async function nextTimestamp(ahead = 10): Promise<bigint> {
  const t = (await time.latest()) + ahead;
  await time.setNextBlockTimestamp(t);
  return BigInt(t);
}

describe("NodeRegistry", function () {
  describe("register", function () {
    it("stakes, takes roles and emits NodeRegistered", async function () {
      const f = await loadFixture(deployFixture);
      const other = await f.other.getAddress();
      const roles = ROLE.INFERENCE | ROLE.DATA;
      const stake = parseEther("2");
      const at = await nextTimestamp();
      const tx = await f.nodes.connect(f.other).register(roles, { value: stake });
      await expect(tx).to.emit(f.nodes, "NodeRegistered").withArgs(other, roles, stake);
      await expect(tx).to.changeEtherBalances([f.nodes, f.other], [stake, -stake]);

      const n = await f.nodes.nodeInfo(other);
      expect(n.stake).to.equal(stake);
      expect(n.roles).to.equal(roles);
      expect(n.jailedUntil).to.equal(0n);
      expect(n.unbonding).to.equal(0n);
      expect(n.unbondingReleaseAt).to.equal(0n);
      expect(n.registeredAt).to.equal(at);
      expect(await f.nodes.stakeOf(other)).to.equal(stake);
      expect(await f.nodes.rolesOf(other)).to.equal(roles);
      expect(await f.nodes.isActive(other, ROLE.INFERENCE)).to.equal(true);
      expect(await f.nodes.isActive(other, ROLE.DATA)).to.equal(true);
      expect(await f.nodes.isActive(other, ROLE.VERIFIER)).to.equal(false);
    });

    it("the fixture's nodes are staked inference nodes", async function () {
      const f = await loadFixture(deployFixture);
      for (const n of [f.node1, f.node2]) {
        const a = await n.getAddress();
        expect(await f.nodes.stakeOf(a)).to.equal(ONE);
        expect(await f.nodes.rolesOf(a)).to.equal(ROLE.INFERENCE);
        expect(await f.nodes.isActive(a, ROLE.INFERENCE)).to.equal(true);
        expect(await f.nodes.isActive(a, ROLE.VERIFIER)).to.equal(false);
      }
      expect(await ethers.provider.getBalance(f.addresses.nodeRegistry)).to.equal(2n * ONE);
      const stranger = await f.other.getAddress();
      expect(await f.nodes.isActive(stranger, ROLE.INFERENCE)).to.equal(false);
      expect(await f.nodes.stakeOf(stranger)).to.equal(0n);
      expect((await f.nodes.nodeInfo(stranger)).registeredAt).to.equal(0n);
    });

    it("accepts all three roles at exactly the largest minimum", async function () {
      const f = await loadFixture(deployFixture);
      const other = await f.other.getAddress();
      await f.nodes.connect(f.other).register(7, { value: ONE });
      for (const role of [ROLE.INFERENCE, ROLE.VERIFIER, ROLE.DATA]) {
        expect(await f.nodes.isActive(other, role)).to.equal(true);
      }
    });

    it("reverts InvalidRoles for 0 and for bits outside 7", async function () {
      const f = await loadFixture(deployFixture);
      for (const roles of [0, 8, 9, 15, 128, 255]) {
        await expect(f.nodes.connect(f.other).register(roles, { value: parseEther("5") }))
          .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__InvalidRoles")
          .withArgs(roles);
      }
    });

    it("reverts AlreadyRegistered for a second registration", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.nodes.connect(f.node1).register(ROLE.DATA, { value: ONE }))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__AlreadyRegistered")
        .withArgs(await f.node1.getAddress());
    });

    it("reverts StakeBelowMinimum naming the role, the stake and the minimum", async function () {
      const f = await loadFixture(deployFixture);
      const n = f.nodes.connect(f.other);
      await expect(n.register(ROLE.DATA, { value: parseEther("0.4") }))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__StakeBelowMinimum")
        .withArgs(ROLE.DATA, parseEther("0.4"), P.minStakeData);
      await expect(n.register(ROLE.INFERENCE | ROLE.DATA, { value: parseEther("0.7") }))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__StakeBelowMinimum")
        .withArgs(ROLE.INFERENCE, parseEther("0.7"), P.minStakeInference);
      await expect(n.register(ROLE.VERIFIER, { value: ONE - 1n }))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__StakeBelowMinimum")
        .withArgs(ROLE.VERIFIER, ONE - 1n, P.minStakeVerifier);
      await expect(n.register(ROLE.INFERENCE))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__StakeBelowMinimum")
        .withArgs(ROLE.INFERENCE, 0, P.minStakeInference);
    });
  });

  describe("addStake", function () {
    it("adds to the bonded stake and emits StakeAdded", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      const tx = await f.nodes.connect(f.node1).addStake({ value: parseEther("0.5") });
      await expect(tx).to.emit(f.nodes, "StakeAdded").withArgs(node, parseEther("0.5"), parseEther("1.5"));
      await expect(tx).to.changeEtherBalances([f.nodes, f.node1], [parseEther("0.5"), -parseEther("0.5")]);
      expect(await f.nodes.stakeOf(node)).to.equal(parseEther("1.5"));
    });

    it("reverts ZeroAmount and NotRegistered", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.nodes.connect(f.node1).addStake()).to.be.revertedWithCustomError(
        f.nodes,
        "NodeRegistry__ZeroAmount",
      );
      await expect(f.nodes.connect(f.other).addStake({ value: ONE }))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__NotRegistered")
        .withArgs(await f.other.getAddress());
    });

    it("restores an under-staked node to active", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      await f.nodes.connect(f.node1).startUnbonding(1n);
      expect(await f.nodes.isActive(node, ROLE.INFERENCE)).to.equal(false);
      await f.nodes.connect(f.node1).addStake({ value: 1n });
      expect(await f.nodes.isActive(node, ROLE.INFERENCE)).to.equal(true);
    });
  });

  describe("setRoles", function () {
    it("changes roles and emits RolesChanged", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      await expect(f.nodes.connect(f.node1).setRoles(ROLE.INFERENCE | ROLE.VERIFIER))
        .to.emit(f.nodes, "RolesChanged")
        .withArgs(node, ROLE.INFERENCE, ROLE.INFERENCE | ROLE.VERIFIER);
      expect(await f.nodes.rolesOf(node)).to.equal(3n);
      expect(await f.nodes.isActive(node, ROLE.VERIFIER)).to.equal(true);
      await expect(f.nodes.connect(f.node1).setRoles(ROLE.DATA))
        .to.emit(f.nodes, "RolesChanged")
        .withArgs(node, 3, ROLE.DATA);
      expect(await f.nodes.isActive(node, ROLE.INFERENCE)).to.equal(false);
      expect(await f.nodes.isActive(node, ROLE.VERIFIER)).to.equal(false);
      expect(await f.nodes.isActive(node, ROLE.DATA)).to.equal(true);
    });

    it("checks each role's minimum against the bonded stake", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      await f.nodes.connect(f.node1).startUnbonding(parseEther("0.6"));
      await expect(f.nodes.connect(f.node1).setRoles(ROLE.DATA))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__StakeBelowMinimum")
        .withArgs(ROLE.DATA, parseEther("0.4"), P.minStakeData);
      await expect(f.nodes.connect(f.node1).setRoles(ROLE.INFERENCE))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__StakeBelowMinimum")
        .withArgs(ROLE.INFERENCE, parseEther("0.4"), P.minStakeInference);
      expect(await f.nodes.rolesOf(node)).to.equal(ROLE.INFERENCE);
    });

    it("allows roles 0, which makes the node inactive", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      await expect(f.nodes.connect(f.node1).setRoles(0))
        .to.emit(f.nodes, "RolesChanged")
        .withArgs(node, ROLE.INFERENCE, 0);
      expect(await f.nodes.rolesOf(node)).to.equal(0n);
      expect(await f.nodes.stakeOf(node)).to.equal(ONE);
      for (const role of [ROLE.INFERENCE, ROLE.VERIFIER, ROLE.DATA]) {
        expect(await f.nodes.isActive(node, role)).to.equal(false);
      }
      // Roles 0 has no minimum: a node with all its stake unbonding may still set it.
      await f.nodes.connect(f.node2).startUnbonding(ONE);
      await expect(f.nodes.connect(f.node2).setRoles(0))
        .to.emit(f.nodes, "RolesChanged")
        .withArgs(await f.node2.getAddress(), ROLE.INFERENCE, 0);
    });

    it("reverts InvalidRoles for bits outside 7 and NotRegistered for a stranger", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.nodes.connect(f.node1).setRoles(8))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__InvalidRoles")
        .withArgs(8);
      await expect(f.nodes.connect(f.node1).setRoles(0xf1))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__InvalidRoles")
        .withArgs(0xf1);
      await expect(f.nodes.connect(f.other).setRoles(ROLE.INFERENCE))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__NotRegistered")
        .withArgs(await f.other.getAddress());
    });
  });

  describe("unbonding and withdrawal", function () {
    it("startUnbonding moves stake, emits UnbondingStarted with releaseAt", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      const t = await nextTimestamp();
      const tx = await f.nodes.connect(f.node1).startUnbonding(parseEther("0.25"));
      await expect(tx)
        .to.emit(f.nodes, "UnbondingStarted")
        .withArgs(node, parseEther("0.25"), parseEther("0.25"), t + UNBONDING_DELAY);
      await expect(tx).to.changeEtherBalances([f.nodes, f.node1], [0, 0]);
      const n = await f.nodes.nodeInfo(node);
      expect(n.stake).to.equal(parseEther("0.75"));
      expect(n.unbonding).to.equal(parseEther("0.25"));
      expect(n.unbondingReleaseAt).to.equal(t + UNBONDING_DELAY);
      expect(await f.nodes.stakeOf(node)).to.equal(parseEther("0.75"));
    });

    it("a second call adds to the amount and restarts the delay for all of it", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      await f.nodes.connect(f.node1).startUnbonding(parseEther("0.25"));
      const t2 = await nextTimestamp(600);
      await expect(f.nodes.connect(f.node1).startUnbonding(parseEther("0.5")))
        .to.emit(f.nodes, "UnbondingStarted")
        .withArgs(node, parseEther("0.5"), parseEther("0.75"), t2 + UNBONDING_DELAY);
      const n = await f.nodes.nodeInfo(node);
      expect(n.stake).to.equal(parseEther("0.25"));
      expect(n.unbonding).to.equal(parseEther("0.75"));
      expect(n.unbondingReleaseAt).to.equal(t2 + UNBONDING_DELAY);
    });

    it("a node that drops below its minimum is no longer active", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      await f.nodes.connect(f.node1).startUnbonding(1n);
      expect(await f.nodes.stakeOf(node)).to.equal(ONE - 1n);
      expect(await f.nodes.isActive(node, ROLE.INFERENCE)).to.equal(false);
      expect(await f.nodes.rolesOf(node)).to.equal(ROLE.INFERENCE);
    });

    it("reverts InsufficientStake, ZeroAmount and NotRegistered", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.nodes.connect(f.node1).startUnbonding(ONE + 1n))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__InsufficientStake")
        .withArgs(ONE + 1n, ONE);
      await f.nodes.connect(f.node1).startUnbonding(parseEther("0.5"));
      await expect(f.nodes.connect(f.node1).startUnbonding(parseEther("0.6")))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__InsufficientStake")
        .withArgs(parseEther("0.6"), parseEther("0.5"));
      await expect(f.nodes.connect(f.node1).startUnbonding(0)).to.be.revertedWithCustomError(
        f.nodes,
        "NodeRegistry__ZeroAmount",
      );
      await expect(f.nodes.connect(f.other).startUnbonding(1))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__NotRegistered")
        .withArgs(await f.other.getAddress());
    });

    it("withdraw reverts NothingUnbonding, then StillUnbonding until releaseAt", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      await expect(f.nodes.connect(f.node1).withdraw())
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__NothingUnbonding")
        .withArgs(node);
      const t = await nextTimestamp();
      await f.nodes.connect(f.node1).startUnbonding(parseEther("0.4"));
      const releaseAt = t + UNBONDING_DELAY;
      await expect(f.nodes.connect(f.node1).withdraw())
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__StillUnbonding")
        .withArgs(node, releaseAt);
      // One second before the release, as a mined transaction.
      await time.setNextBlockTimestamp(releaseAt - 1n);
      await expect(f.nodes.connect(f.node1).withdraw({ gasLimit: 200_000 }))
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__StillUnbonding")
        .withArgs(node, releaseAt);
      expect(await time.latest()).to.equal(Number(releaseAt - 1n));
      expect((await f.nodes.nodeInfo(node)).unbonding).to.equal(parseEther("0.4"));
      await expect(f.nodes.connect(f.other).withdraw())
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__NotRegistered")
        .withArgs(await f.other.getAddress());
    });

    it("withdraw at releaseAt pays out exactly the unbonded amount", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node1.getAddress();
      const t = await nextTimestamp();
      await f.nodes.connect(f.node1).startUnbonding(parseEther("0.4"));
      await time.setNextBlockTimestamp(t + UNBONDING_DELAY);
      const tx = await f.nodes.connect(f.node1).withdraw();
      await expect(tx).to.emit(f.nodes, "StakeWithdrawn").withArgs(node, parseEther("0.4"));
      await expect(tx).to.changeEtherBalances([f.nodes, f.node1], [-parseEther("0.4"), parseEther("0.4")]);
      const n = await f.nodes.nodeInfo(node);
      expect(n.stake).to.equal(parseEther("0.6"));
      expect(n.unbonding).to.equal(0n);
      expect(n.unbondingReleaseAt).to.equal(0n);
      expect(await ethers.provider.getBalance(f.addresses.nodeRegistry)).to.equal(parseEther("1.6"));
      await expect(f.nodes.connect(f.node1).withdraw())
        .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__NothingUnbonding")
        .withArgs(node);
    });

    it("a node can leave entirely: unbond all, set roles 0, withdraw all", async function () {
      const f = await loadFixture(deployFixture);
      const node = await f.node2.getAddress();
      await f.nodes.connect(f.node2).startUnbonding(ONE);
      await f.nodes.connect(f.node2).setRoles(0);
      await time.increase(UNBONDING_DELAY);
      await expect(f.nodes.connect(f.node2).withdraw()).to.changeEtherBalances(
        [f.nodes, f.node2],
        [-ONE, ONE],
      );
      expect(await f.nodes.stakeOf(node)).to.equal(0n);
      expect(await ethers.provider.getBalance(f.addresses.nodeRegistry)).to.equal(ONE);
    });
  });

  describe("parameters", function () {
    it("minStake per role; anything but a single role reverts InvalidRoles", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.nodes.minStake(ROLE.INFERENCE)).to.equal(P.minStakeInference);
      expect(await f.nodes.minStake(ROLE.VERIFIER)).to.equal(P.minStakeVerifier);
      expect(await f.nodes.minStake(ROLE.DATA)).to.equal(P.minStakeData);
      const node1 = await f.node1.getAddress();
      for (const role of [0, 3, 5, 7, 8, 255]) {
        await expect(f.nodes.minStake(role))
          .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__InvalidRoles")
          .withArgs(role);
        // isActive is asked about one role at a time, whatever the node holds.
        await expect(f.nodes.isActive(node1, role))
          .to.be.revertedWithCustomError(f.nodes, "NodeRegistry__InvalidRoles")
          .withArgs(role);
      }
    });

    it("stakeParams returns the deployed parameters", async function () {
      const f = await loadFixture(deployFixture);
      const p = await f.nodes.stakeParams();
      expect(p.minStakeInference).to.equal(P.minStakeInference);
      expect(p.minStakeVerifier).to.equal(P.minStakeVerifier);
      expect(p.minStakeData).to.equal(P.minStakeData);
      expect(p.unbondingDelay).to.equal(P.unbondingDelay);
      expect(p.jailPeriod).to.equal(P.jailPeriod);
      expect(await f.nodes.settlement()).to.equal(ethers.getAddress(f.addresses.settlement));
    });

    it("setStakeParams is owner-only", async function () {
      const f = await loadFixture(deployFixture);
      const other = await f.other.getAddress();
      await expect(f.nodes.connect(f.other).setStakeParams(P))
        .to.be.revertedWithCustomError(f.nodes, "OwnableUnauthorizedAccount")
        .withArgs(other);
      await expect(f.nodes.connect(f.node1).setStakeParams({ ...P, minStakeInference: 0n }))
        .to.be.revertedWithCustomError(f.nodes, "OwnableUnauthorizedAccount")
        .withArgs(await f.node1.getAddress());
    });

    it("setStakeParams emits StakeParamsChanged and applies at once", async function () {
      const f = await loadFixture(deployFixture);
      const next = {
        minStakeInference: parseEther("2"),
        minStakeVerifier: parseEther("3"),
        minStakeData: parseEther("0.1"),
        unbondingDelay: 7 * 24 * 3600,
        jailPeriod: 3600,
      };
      await expect(f.nodes.connect(f.owner).setStakeParams(next))
        .to.emit(f.nodes, "StakeParamsChanged")
        .withArgs(stakeTuple(next));
      const p = await f.nodes.stakeParams();
      expect([
        p.minStakeInference,
        p.minStakeVerifier,
        p.minStakeData,
        p.unbondingDelay,
        p.jailPeriod,
      ]).to.deep.equal([next.minStakeInference, next.minStakeVerifier, next.minStakeData, 604800n, 3600n]);
      expect(await f.nodes.minStake(ROLE.INFERENCE)).to.equal(parseEther("2"));
      // 1 ETH no longer meets the inference minimum.
      const node = await f.node1.getAddress();
      expect(await f.nodes.isActive(node, ROLE.INFERENCE)).to.equal(false);
      await f.nodes.connect(f.node1).addStake({ value: ONE });
      expect(await f.nodes.isActive(node, ROLE.INFERENCE)).to.equal(true);
      // The new delay applies to unbonding started afterwards.
      const t = await nextTimestamp();
      await expect(f.nodes.connect(f.node1).startUnbonding(1n))
        .to.emit(f.nodes, "UnbondingStarted")
        .withArgs(node, 1n, 1n, t + 604800n);
    });
  });

  describe("initialize", function () {
    it("cannot run twice", async function () {
      const f = await loadFixture(deployFixture);
      await expect(
        f.nodes.connect(f.owner).initialize(await f.owner.getAddress(), P),
      ).to.be.revertedWithCustomError(f.nodes, "InvalidInitialization");
    });

    it("only the deployer may initialize a fresh deployment", async function () {
      const f = await loadFixture(deployFixture);
      const factory = (await ethers.getContractFactory(
        "NodeRegistry",
        f.other,
      )) as unknown as NodeRegistry__factory;
      const fresh = await factory.deploy(await f.user.getAddress());
      expect(await fresh.deployer()).to.equal(await f.other.getAddress());
      expect(await fresh.settlement()).to.equal(await f.user.getAddress());
      await expect(fresh.connect(f.owner).initialize(await f.owner.getAddress(), P))
        .to.be.revertedWithCustomError(fresh, "System__NotDeployer")
        .withArgs(await f.owner.getAddress());
      await expect(fresh.connect(f.other).initialize(await f.other.getAddress(), P))
        .to.emit(fresh, "StakeParamsChanged")
        .withArgs(stakeTuple(P));
      expect(await fresh.owner()).to.equal(await f.other.getAddress());
      expect(await f.nodes.deployer()).to.equal(await f.owner.getAddress());
    });

    it("the constructor rejects a zero settlement address", async function () {
      const factory = await ethers.getContractFactory("NodeRegistry");
      await expect(factory.deploy(ZeroAddress)).to.be.revertedWithCustomError(factory, "System__ZeroAddress");
    });
  });

  describe("slash (stand-alone registry, a signer as the settlement)", function () {
    async function slashFixture() {
      const [deployer, slasher, nodeA, nodeB, stranger] = (await ethers.getSigners()) as unknown as [
        Signer,
        Signer,
        Signer,
        Signer,
        Signer,
      ];
      const factory = (await ethers.getContractFactory(
        "NodeRegistry",
        deployer,
      )) as unknown as NodeRegistry__factory;
      const reg = await factory.deploy(await slasher.getAddress());
      await reg.initialize(await deployer.getAddress(), P);
      await reg.connect(nodeA).register(ROLE.INFERENCE, { value: parseEther("2") });
      return {
        reg,
        deployer,
        slasher,
        nodeA,
        nodeB,
        stranger,
        a: await nodeA.getAddress(),
        s: reg.connect(slasher),
      };
    }

    it("only the settlement address may slash", async function () {
      const { reg, deployer, stranger, nodeA, a } = await loadFixture(slashFixture);
      for (const who of [stranger, deployer, nodeA]) {
        await expect(reg.connect(who).slash(a, ONE, true))
          .to.be.revertedWithCustomError(reg, "NodeRegistry__OnlySettlement")
          .withArgs(await who.getAddress());
      }
      expect(await reg.stakeOf(a)).to.equal(parseEther("2"));
    });

    it("slashing an unregistered node reverts NotRegistered", async function () {
      const { reg, s, stranger } = await loadFixture(slashFixture);
      await expect(s.slash(await stranger.getAddress(), ONE, true))
        .to.be.revertedWithCustomError(reg, "NodeRegistry__NotRegistered")
        .withArgs(await stranger.getAddress());
    });

    it("takes bonded stake first, sends it to the settlement, emits NodeSlashed and jails", async function () {
      const { reg, s, slasher, nodeA, a } = await loadFixture(slashFixture);
      await reg.connect(nodeA).startUnbonding(parseEther("0.5")); // 1.5 bonded, 0.5 unbonding
      expect(await s.slash.staticCall(a, ONE, true)).to.equal(ONE);
      const t = await nextTimestamp();
      const tx = await s.slash(a, ONE, true);
      await expect(tx)
        .to.emit(reg, "NodeSlashed")
        .withArgs(a, ONE, ONE, t + JAIL_PERIOD);
      await expect(tx).to.changeEtherBalances([reg, slasher], [-ONE, ONE]);
      const n = await reg.nodeInfo(a);
      expect(n.stake).to.equal(parseEther("0.5"));
      expect(n.unbonding).to.equal(parseEther("0.5"));
      expect(n.jailedUntil).to.equal(t + JAIL_PERIOD);
      expect(await ethers.provider.getBalance(await reg.getAddress())).to.equal(ONE);
    });

    it("then takes from what is unbonding", async function () {
      const { reg, s, slasher, nodeA, a } = await loadFixture(slashFixture);
      await reg.connect(nodeA).startUnbonding(parseEther("0.5")); // 1.5 bonded, 0.5 unbonding
      const amount = parseEther("1.8");
      const t = await nextTimestamp();
      const tx = await s.slash(a, amount, true);
      await expect(tx)
        .to.emit(reg, "NodeSlashed")
        .withArgs(a, amount, amount, t + JAIL_PERIOD);
      await expect(tx).to.changeEtherBalances([reg, slasher], [-amount, amount]);
      const n = await reg.nodeInfo(a);
      expect(n.stake).to.equal(0n);
      expect(n.unbonding).to.equal(parseEther("0.2"));
    });

    it("never takes more than stake plus unbonding", async function () {
      const { reg, s, slasher, deployer } = await loadFixture(slashFixture);
      await reg.connect(deployer).register(ROLE.INFERENCE, { value: ONE });
      const d = await deployer.getAddress();
      const requested = parseEther("100");
      expect(await s.slash.staticCall(d, requested, true)).to.equal(ONE);
      const t = await nextTimestamp();
      const tx = await s.slash(d, requested, true);
      await expect(tx)
        .to.emit(reg, "NodeSlashed")
        .withArgs(d, requested, ONE, t + JAIL_PERIOD);
      await expect(tx).to.changeEtherBalances([reg, slasher, deployer], [-ONE, ONE, 0]);
      const n = await reg.nodeInfo(d);
      expect(n.stake).to.equal(0n);
      expect(n.unbonding).to.equal(0n);
      // The other node's 2 ETH are untouched.
      expect(await ethers.provider.getBalance(await reg.getAddress())).to.equal(parseEther("2"));
      // A node with nothing left can still be slashed (and jailed again) for nothing.
      const t2 = await nextTimestamp(100);
      await expect(s.slash(d, 1n, true))
        .to.emit(reg, "NodeSlashed")
        .withArgs(d, 1n, 0, t2 + JAIL_PERIOD);
    });

    it("a slashed node is jailed until the jail period passes", async function () {
      const { reg, s, a } = await loadFixture(slashFixture);
      const t = await nextTimestamp();
      await s.slash(a, parseEther("0.5"), true); // 1.5 left: still above the minimum
      const jailedUntil = t + JAIL_PERIOD;
      expect(await reg.isActive(a, ROLE.INFERENCE)).to.equal(false);
      await time.increaseTo(jailedUntil - 10n);
      expect(await reg.isActive(a, ROLE.INFERENCE)).to.equal(false);
      await time.increaseTo(jailedUntil + 1n);
      expect(await reg.isActive(a, ROLE.INFERENCE)).to.equal(true);
      expect(await reg.stakeOf(a)).to.equal(parseEther("1.5"));
    });

    it("slash of 0 only jails", async function () {
      const { reg, s, slasher, a } = await loadFixture(slashFixture);
      const t = await nextTimestamp();
      const tx = await s.slash(a, 0, true);
      await expect(tx)
        .to.emit(reg, "NodeSlashed")
        .withArgs(a, 0, 0, t + JAIL_PERIOD);
      await expect(tx).to.changeEtherBalances([reg, slasher], [0, 0]);
      expect(await reg.stakeOf(a)).to.equal(parseEther("2"));
      expect((await reg.nodeInfo(a)).jailedUntil).to.equal(t + JAIL_PERIOD);
      expect(await reg.isActive(a, ROLE.INFERENCE)).to.equal(false);
    });

    it("a later slash never shortens a jail term", async function () {
      const { reg, deployer, s, a } = await loadFixture(slashFixture);
      const t = await nextTimestamp();
      await s.slash(a, 0, true);
      await reg.connect(deployer).setStakeParams({ ...P, jailPeriod: 60 });
      await expect(s.slash(a, 0, true))
        .to.emit(reg, "NodeSlashed")
        .withArgs(a, 0, 0, t + JAIL_PERIOD);
      expect((await reg.nodeInfo(a)).jailedUntil).to.equal(t + JAIL_PERIOD);
    });

    it("unbonding that was slashed cannot be withdrawn", async function () {
      const { reg, s, nodeA, a } = await loadFixture(slashFixture);
      await reg.connect(nodeA).startUnbonding(parseEther("2"));
      await s.slash(a, parseEther("2"), true);
      await time.increase(UNBONDING_DELAY + 1n);
      await expect(reg.connect(nodeA).withdraw())
        .to.be.revertedWithCustomError(reg, "NodeRegistry__NothingUnbonding")
        .withArgs(a);
    });

    it("a partly slashed unbonding withdraws only what is left", async function () {
      const { reg, s, nodeA, a } = await loadFixture(slashFixture);
      await reg.connect(nodeA).startUnbonding(parseEther("1.5")); // 0.5 bonded, 1.5 unbonding
      await s.slash(a, ONE, true); // 0.5 from bonded, 0.5 from unbonding
      expect((await reg.nodeInfo(a)).unbonding).to.equal(ONE);
      await time.increase(UNBONDING_DELAY + 1n);
      const tx = await reg.connect(nodeA).withdraw();
      await expect(tx).to.emit(reg, "StakeWithdrawn").withArgs(a, ONE);
      await expect(tx).to.changeEtherBalances([reg, nodeA], [-ONE, ONE]);
      expect(await ethers.provider.getBalance(await reg.getAddress())).to.equal(0n);
    });
  });

  describe("jailing in the deployed system", function () {
    it("a jailed inference node cannot fulfil; another node still can", async function () {
      const f = await loadFixture(deployFixture);
      const node1 = await f.node1.getAddress();
      const req = await requestFromTx(
        f,
        await f.hub.connect(f.user).requestInference(MODEL_ID, SAMPLE_INPUT, 0, { value: MODEL_FEE }),
      );
      await ethers.provider.send("hardhat_impersonateAccount", [f.addresses.settlement]);
      await setBalance(f.addresses.settlement, parseEther("1"));
      const settlementSigner = await ethers.getSigner(f.addresses.settlement);
      const t = await nextTimestamp();
      await expect(f.nodes.connect(settlementSigner).slash(node1, 0, true))
        .to.emit(f.nodes, "NodeSlashed")
        .withArgs(node1, 0, 0, t + JAIL_PERIOD);

      expect(await f.nodes.isActive(node1, ROLE.INFERENCE)).to.equal(false);
      expect(await f.nodes.stakeOf(node1)).to.equal(ONE);
      const outputHash = keccak256(SAMPLE_OUTPUT);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, outputHash))
        .to.be.revertedWithCustomError(f.hub, "Hub__NotInferenceNode")
        .withArgs(node1);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Pending);
      await f.hub.connect(f.node2).fulfill(req, STATUS.Success, SAMPLE_OUTPUT, outputHash);
      expect(await f.hub.requestState(req.requestId)).to.equal(STATE.Fulfilled);

      // Slashed value reaches the Settlement contract: its receive() takes ETH from the registry.
      const amount = parseEther("0.25");
      await expect(f.nodes.connect(settlementSigner).slash(node1, amount, true)).to.changeEtherBalances(
        [f.nodes, f.settlement],
        [-amount, amount],
      );
      await ethers.provider.send("hardhat_stopImpersonatingAccount", [f.addresses.settlement]);
      expect(await f.nodes.stakeOf(node1)).to.equal(parseEther("0.75"));
    });
  });
});
