import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { deployFixture } from "./helpers";
import { deploySystem, writeDeployment } from "../../deploy/system";
import { FIXED_ADDRESSES } from "../../deploy/config";

describe("deploy", () => {
  it("places the system at its fixed addresses, wired and initialised", async () => {
    const f = await loadFixture(deployFixture);
    expect(f.addresses).to.deep.equal(FIXED_ADDRESSES);
    for (const address of Object.values(FIXED_ADDRESSES)) {
      expect(await hre.ethers.provider.getCode(address)).to.not.equal("0x");
    }
    const owner = await f.owner.getAddress();
    expect(await f.hub.owner()).to.equal(owner);
    expect(await f.nodes.settlement()).to.equal(FIXED_ADDRESSES.settlement);
    expect((await f.settlement.params()).treasury).to.equal(await f.treasury.getAddress());
    expect(await f.dataFeeds.nodeRegistry()).to.equal(FIXED_ADDRESSES.nodeRegistry);
    expect(await f.dataFeeds.owner()).to.equal(owner);
    await expect(f.models.initialize(owner)).to.be.revertedWithCustomError(f.models, "InvalidInitialization");
    // A second devnet deployment onto the same chain is refused before it sends anything.
    const error = await deploySystem(hre, { mode: "fixed" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(error)).to.match(/already has code at its fixed address/);
  });

  it("deploys normally at predicted addresses and writes the deployments file", async () => {
    const [, , , , , , , , deployer, governance] = await hre.ethers.getSigners();
    const system = await deploySystem(hre, { mode: "create", deployer, owner: governance!.address });
    expect(await system.settlement.owner()).to.equal(governance!.address);
    expect(await system.nodes.settlement()).to.equal(system.addresses.settlement);
    expect(await system.dataFeeds.owner()).to.equal(governance!.address);
    expect(await system.dataFeeds.nodeRegistry()).to.equal(system.addresses.nodeRegistry);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-deploy-"));
    const file = await writeDeployment(hre, system, "create", dir);
    const written = JSON.parse(fs.readFileSync(file, "utf8"));
    expect(written.chainId).to.equal(31337);
    expect(written.mode).to.equal("create");
    expect(written.contracts).to.deep.equal(system.addresses);
  });

  it("is readable through viem as well as ethers", async () => {
    const f = await loadFixture(deployFixture);
    const hub = await hre.viem.getContractAt("InferenceHub", FIXED_ADDRESSES.inferenceHub);
    const params = await hub.read.params();
    expect(params.requestTimeout).to.equal(3600);
    expect(await hub.read.owner()).to.equal(await f.owner.getAddress());
  });

  it("only the deployer can initialise freshly deployed code", async () => {
    const [, stranger] = await hre.ethers.getSigners();
    const registry = await (await hre.ethers.getContractFactory("ModelRegistry")).deploy();
    await expect(registry.connect(stranger!).initialize(stranger!.address))
      .to.be.revertedWithCustomError(registry, "System__NotDeployer")
      .withArgs(stranger!.address);
  });
});
