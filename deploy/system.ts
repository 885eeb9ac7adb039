import fs from "node:fs";
import path from "node:path";
import { getCreateAddress, type Signer } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type {
  BatchSettlement,
  DataFeeds,
  InferenceHub,
  ModelRegistry,
  NodeRegistry,
  Settlement,
} from "../typechain-types";
import { DEVNET_PARAMS, FIXED_ADDRESSES, type ContractName, type SystemParams } from "./config";

export type Addresses = Record<ContractName, string>;

export interface DeployedSystem {
  addresses: Addresses;
  hub: InferenceHub;
  models: ModelRegistry;
  nodes: NodeRegistry;
  settlement: Settlement;
  dataFeeds: DataFeeds;
  batchSettlement: BatchSettlement;
}

export interface DeployOptions {
  /**
   * `fixed` places the runtime code at the documented devnet addresses (hardhat_setCode), as an
   * appchain exposes its modules; `create` deploys normally, for any other EVM chain.
   */
  mode: "fixed" | "create";
  /** Governance of the system contracts; the deployer when left out. */
  owner?: string;
  params?: SystemParams;
  deployer?: Signer;
}

/**
 * Deploy gradnet's system contracts and initialise them. The contracts reference each other
 * through immutables, so every address is known before the first deployment: the fixed ones,
 * or the deployer's next CREATE addresses.
 */
export async function deploySystem(
  hre: HardhatRuntimeEnvironment,
  opts: DeployOptions,
): Promise<DeployedSystem> {
  const { ethers } = hre;
  const deployer = opts.deployer ?? (await ethers.getSigners())[0]!;
  const deployerAddress = await deployer.getAddress();
  const owner = opts.owner ?? deployerAddress;
  const params = opts.params ?? DEVNET_PARAMS;

  let target: Addresses;
  if (opts.mode === "fixed") {
    target = { ...FIXED_ADDRESSES };
    for (const [name, address] of Object.entries(target)) {
      if ((await ethers.provider.getCode(address)) !== "0x") {
        throw new Error(
          `${name} already has code at its fixed address ${address}: this chain already runs gradnet ` +
            "(restart the Hardhat node for a fresh devnet)",
        );
      }
    }
  } else {
    const nonce = await ethers.provider.getTransactionCount(deployerAddress, "pending");
    const at = (i: number) => getCreateAddress({ from: deployerAddress, nonce: nonce + i });
    target = {
      modelRegistry: at(0),
      nodeRegistry: at(1),
      inferenceHub: at(2),
      settlement: at(3),
      dataFeeds: at(4),
      batchSettlement: at(5),
    };
  }

  const factory = (name: string) => ethers.getContractFactory(name, deployer);
  const deployed = {
    modelRegistry: await (await factory("ModelRegistry")).deploy(),
    nodeRegistry: await (await factory("NodeRegistry")).deploy(target.settlement),
    inferenceHub: await (
      await factory("InferenceHub")
    ).deploy(target.modelRegistry, target.nodeRegistry, target.settlement),
    settlement: await (
      await factory("Settlement")
    ).deploy(target.inferenceHub, target.modelRegistry, target.nodeRegistry),
    dataFeeds: await (await factory("DataFeeds")).deploy(target.nodeRegistry),
    batchSettlement: await (await factory("BatchSettlement")).deploy(target.nodeRegistry, target.settlement),
  };
  for (const [name, contract] of Object.entries(deployed)) {
    await contract.waitForDeployment();
    const actual = await contract.getAddress();
    if (opts.mode === "create" && actual !== target[name as ContractName]) {
      throw new Error(
        `${name} deployed at ${actual}, expected ${target[name as ContractName]}: the nonce moved`,
      );
    }
    if (opts.mode === "fixed") {
      const code = await ethers.provider.getCode(actual);
      await ethers.provider.send("hardhat_setCode", [target[name as ContractName], code]);
    }
  }

  const hub = (await ethers.getContractAt(
    "InferenceHub",
    target.inferenceHub,
    deployer,
  )) as unknown as InferenceHub;
  const models = (await ethers.getContractAt(
    "ModelRegistry",
    target.modelRegistry,
    deployer,
  )) as unknown as ModelRegistry;
  const nodes = (await ethers.getContractAt(
    "NodeRegistry",
    target.nodeRegistry,
    deployer,
  )) as unknown as NodeRegistry;
  const settlement = (await ethers.getContractAt(
    "Settlement",
    target.settlement,
    deployer,
  )) as unknown as Settlement;
  const dataFeeds = (await ethers.getContractAt(
    "DataFeeds",
    target.dataFeeds,
    deployer,
  )) as unknown as DataFeeds;

  await (await models.initialize(owner)).wait();
  await (await nodes.initialize(owner, params.stake)).wait();
  await (await hub.initialize(owner, params.hub)).wait();
  await (
    await settlement.initialize(
      owner,
      {
        ...params.settlement,
        treasury: params.settlement.treasury ?? owner,
      },
      params.disputes,
    )
  ).wait();
  await (await dataFeeds.initialize(owner)).wait();

  // Batch settlement (off-chain inference paid from deposits) reads Settlement's window and fee.
  const batchSettlement = (await ethers.getContractAt(
    "BatchSettlement",
    target.batchSettlement,
    deployer,
  )) as unknown as BatchSettlement;
  await (await batchSettlement.initialize(owner)).wait();
  // Its challenges open disputes in Settlement's engine, which only sources the owner registered
  // may do. With a separate governance owner, governance makes this call itself.
  if (owner.toLowerCase() === deployerAddress.toLowerCase()) {
    await (await settlement.setDisputeSource(target.batchSettlement, true)).wait();
  }

  return { addresses: target, hub, models, nodes, settlement, dataFeeds, batchSettlement };
}

export interface DeploymentFile {
  chainId: number;
  mode: "fixed" | "create";
  owner: string;
  deployedAtBlock: number;
  contracts: Addresses;
}

/** Write `deployments/<chainId>.json`, the one place off-chain code reads addresses from. */
export async function writeDeployment(
  hre: HardhatRuntimeEnvironment,
  system: DeployedSystem,
  mode: "fixed" | "create",
  dir = path.join(hre.config.paths.root, "deployments"),
): Promise<string> {
  const network = await hre.ethers.provider.getNetwork();
  const file: DeploymentFile = {
    chainId: Number(network.chainId),
    mode,
    owner: await system.hub.owner(),
    deployedAtBlock: await hre.ethers.provider.getBlockNumber(),
    contracts: system.addresses,
  };
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `${file.chainId}.json`);
  fs.writeFileSync(out, JSON.stringify(file, null, 2) + "\n");
  return out;
}
