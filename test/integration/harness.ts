/** What the integration suites share: a Hardhat node binary, a deploy script, small waits. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createPublicClient, http, type Hex, type PublicClient } from "viem";
import { hardhat } from "viem/chains";
import { FIXED_ADDRESSES, type DeploymentFile } from "../../sdk";
import { freePort } from "../../scripts/devnet";

export const ROOT = path.resolve(__dirname, "..", "..");
export const MNEMONIC = "test test test test test test test test test test test junk";

export const HARDHAT_BIN = path.join(
  path.dirname(require.resolve("hardhat/package.json")),
  "internal",
  "cli",
  "bootstrap.js",
);

/** Deploys the system with deploy/system.ts, without writing the repo's deployments/ file. */
export const DEPLOY = `
const hre = require("hardhat");
const { deploySystem } = require("./deploy/system");
deploySystem(hre, { mode: "fixed" }).then(async (s) => {
  const block = await hre.ethers.provider.getBlockNumber();
  const owner = await s.hub.owner();
  console.log(JSON.stringify({ addresses: s.addresses, block, owner }));
}).catch((e) => { console.error(e); process.exit(1); });
`;

export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function run(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: "pipe" });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args[0]} exited ${code}: ${err.slice(-2000)}`)),
    );
  });
}

/** A Hardhat JSON-RPC node with the system deployed at its fixed addresses. */
export interface TestChain {
  rpcUrl: string;
  publicClient: PublicClient;
  /** Holds the deployment file for chain 31337 (not the repository's deployments/). */
  deploymentsDir: string;
  deployedAtBlock: number;
  stop(): Promise<void>;
}

/** Start a Hardhat node on a free port, deploy the system, and write its deployment file under `dir`. */
export async function startTestChain(dir: string): Promise<TestChain> {
  const port = await freePort();
  const rpcUrl = `http://127.0.0.1:${port}`;
  const node = spawn(
    process.execPath,
    [HARDHAT_BIN, "node", "--hostname", "127.0.0.1", "--port", String(port)],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let log = "";
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-20_000));
  node.stdout!.on("data", keep);
  node.stderr!.on("data", keep);
  const stop = async () => {
    if (node.pid === undefined || node.exitCode !== null) return;
    const exited = new Promise((r) => node.once("exit", r));
    process.kill(-node.pid, "SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  };
  try {
    const publicClient = createPublicClient({ chain: hardhat, transport: http(rpcUrl) }) as PublicClient;
    await waitUntil(
      "the hardhat node",
      async () => {
        if (node.exitCode !== null) throw new Error(`hardhat node exited: ${log}`);
        return publicClient.getChainId();
      },
      30_000,
    );
    const out = await run(process.execPath, ["--import", "tsx", "-e", DEPLOY], {
      HARDHAT_NETWORK: "localhost",
      RPC_URL: rpcUrl,
    });
    const deployed = JSON.parse(out.trim().split("\n").pop()!) as {
      addresses: Record<string, string>;
      block: number;
      owner: Hex;
    };
    assert.deepEqual(deployed.addresses, FIXED_ADDRESSES);
    const deploymentsDir = path.join(dir, "deployments");
    fs.mkdirSync(deploymentsDir, { recursive: true });
    const file: DeploymentFile = {
      chainId: 31337,
      mode: "fixed",
      owner: deployed.owner,
      deployedAtBlock: deployed.block,
      contracts: { ...FIXED_ADDRESSES },
    };
    fs.writeFileSync(path.join(deploymentsDir, "31337.json"), JSON.stringify(file));
    return { rpcUrl, publicClient, deploymentsDir, deployedAtBlock: deployed.block, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
