import path from "node:path";
import { subtask } from "hardhat/config";
import {
  TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD,
  TASK_COMPILE_SOLIDITY_LOG_COMPILATION_ERRORS,
} from "hardhat/builtin-tasks/task-names";
import type { HardhatUserConfig } from "hardhat/config";
import { HardhatPluginError } from "hardhat/plugins";
import "@nomicfoundation/hardhat-ethers";
import "@nomicfoundation/hardhat-chai-matchers";
import "@nomicfoundation/hardhat-viem";
import "@typechain/hardhat";

/** The one compiler gradnet builds with. It ships inside the npm `solc` package. */
export const SOLC_VERSION = "0.8.28";

// Compile offline: hand Hardhat the solcjs build from node_modules instead of letting it
// download a native compiler. A fresh clone never reaches for the network.
subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args: { solcVersion: string }) => {
  if (args.solcVersion !== SOLC_VERSION) {
    throw new Error(
      `gradnet compiles with solc ${SOLC_VERSION} only (requested ${args.solcVersion}); ` +
        "pin pragma solidity to it",
    );
  }
  const solcPackage = path.dirname(require.resolve("solc/package.json"));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const bundled: string = require("solc/package.json").version;
  if (bundled !== SOLC_VERSION) {
    throw new Error(`npm solc is ${bundled}, expected ${SOLC_VERSION}; run npm ci`);
  }
  return {
    compilerPath: path.join(solcPackage, "soljson.js"),
    isSolcJs: true,
    version: SOLC_VERSION,
    longVersion: SOLC_VERSION,
  };
});

// Compiler warnings are errors: print them as Hardhat does, then fail the build.
subtask(TASK_COMPILE_SOLIDITY_LOG_COMPILATION_ERRORS).setAction(
  async (
    args: { output?: { errors?: { severity: string; formattedMessage: string }[] } },
    _hre,
    runSuper,
  ) => {
    await runSuper(args);
    const warnings = (args.output?.errors ?? []).filter((e) => e.severity === "warning");
    if (warnings.length > 0) {
      throw new HardhatPluginError(
        "gradnet",
        `solc reported ${warnings.length} warning(s) (printed above); gradnet treats warnings as errors`,
      );
    }
  },
);

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 10_000 },
      viaIR: false,
    },
  },
  paths: {
    sources: "./contracts",
    tests: "./test/contracts",
    cache: "./cache",
    artifacts: "./artifacts",
  },
  networks: {
    hardhat: {
      hardfork: "cancun",
      // Contract tests mine instantly; the devnet (issue: pipeline) runs `hardhat node`.
      allowUnlimitedContractSize: false,
    },
    localhost: { url: process.env.RPC_URL ?? "http://127.0.0.1:8545" },
  },
  typechain: { outDir: "typechain-types", target: "ethers-v6" },
  mocha: { timeout: 120_000 },
};

export default config;
