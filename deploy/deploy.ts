/**
 * Deploy the gradnet system contracts to the network Hardhat is pointed at and write
 * deployments/<chainId>.json.
 *
 *   npx hardhat run deploy/deploy.ts --network localhost       # devnet: fixed addresses
 *   GRADNET_DEPLOY_MODE=create npx hardhat run deploy/deploy.ts --network <name>
 *
 * On a Hardhat network (chain id 31337) the contracts go to their fixed addresses unless
 * GRADNET_DEPLOY_MODE=create; on any other chain they are deployed normally. The file goes to
 * DEPLOYMENTS_DIR when set (default: deployments/).
 */
import hre from "hardhat";
import { deploySystem, writeDeployment } from "./system";

async function main(): Promise<void> {
  const { chainId } = await hre.ethers.provider.getNetwork();
  const requested = process.env.GRADNET_DEPLOY_MODE;
  if (requested !== undefined && requested !== "fixed" && requested !== "create") {
    throw new Error(`GRADNET_DEPLOY_MODE must be "fixed" or "create", got "${requested}"`);
  }
  const mode = requested ?? (chainId === 31337n ? "fixed" : "create");
  if (mode === "fixed" && chainId !== 31337n) {
    throw new Error("fixed addresses need hardhat_setCode, which only a Hardhat network has");
  }
  const system = await deploySystem(hre, { mode });
  const file = await writeDeployment(hre, system, mode, process.env.DEPLOYMENTS_DIR || undefined);
  console.log(`gradnet system deployed (${mode}) on chain ${chainId}:`);
  for (const [name, address] of Object.entries(system.addresses))
    console.log(`  ${name.padEnd(16)} ${address}`);
  console.log(`wrote ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
