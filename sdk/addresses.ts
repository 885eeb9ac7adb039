import fs from "node:fs";
import path from "node:path";
import { getAddress, type Address } from "viem";
import { DeploymentNotFoundError, GradnetError } from "./errors";

/** The Hardhat devnet's chain id. */
export const DEVNET_CHAIN_ID = 31337;

/**
 * Where the system contracts sit on the gradnet devnet, like an appchain's precompiles.
 * On other chains they are deployed normally; read their addresses with `readDeployment`.
 */
export const FIXED_ADDRESSES = {
  inferenceHub: getAddress("0x0000000000000000000000000000000000000f10"),
  modelRegistry: getAddress("0x0000000000000000000000000000000000000f11"),
  nodeRegistry: getAddress("0x0000000000000000000000000000000000000f12"),
  settlement: getAddress("0x0000000000000000000000000000000000000f13"),
  dataFeeds: getAddress("0x0000000000000000000000000000000000000f14"),
  batchSettlement: getAddress("0x0000000000000000000000000000000000000f15"),
} as const;

export type ContractName = keyof typeof FIXED_ADDRESSES;
export type Addresses = Record<ContractName, Address>;

/** deployments/<chainId>.json, as deploy/ writes it. */
export interface DeploymentFile {
  chainId: number;
  mode: "fixed" | "create";
  owner: Address;
  deployedAtBlock: number;
  contracts: Addresses;
}

export const DEFAULT_DEPLOYMENTS_DIR = path.resolve(__dirname, "..", "deployments");

export function deploymentPath(chainId: number, dir = DEFAULT_DEPLOYMENTS_DIR): string {
  return path.join(dir, `${chainId}.json`);
}

/** Read and check a chain's deployment file. */
export function readDeployment(chainId: number, dir = DEFAULT_DEPLOYMENTS_DIR): DeploymentFile {
  const file = deploymentPath(chainId, dir);
  if (!fs.existsSync(file)) throw new DeploymentNotFoundError(chainId, file);
  const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<DeploymentFile>;
  if (parsed.chainId !== chainId || parsed.contracts === undefined) {
    throw new GradnetError("DEPLOYMENT_INVALID", `${file} is not a gradnet deployment for chain ${chainId}`);
  }
  const contracts = {} as Addresses;
  for (const name of Object.keys(FIXED_ADDRESSES) as ContractName[]) {
    const a = parsed.contracts[name];
    if (typeof a !== "string")
      throw new GradnetError("DEPLOYMENT_INVALID", `${file} has no address for ${name}`);
    contracts[name] = getAddress(a);
  }
  return { ...(parsed as DeploymentFile), contracts };
}

/** The addresses to use on `chainId`: the deployment file if there is one, else the devnet's. */
export function resolveAddresses(chainId: number, dir = DEFAULT_DEPLOYMENTS_DIR): Addresses {
  if (fs.existsSync(deploymentPath(chainId, dir))) return readDeployment(chainId, dir).contracts;
  if (chainId === DEVNET_CHAIN_ID) return { ...FIXED_ADDRESSES };
  throw new DeploymentNotFoundError(chainId, deploymentPath(chainId, dir));
}
