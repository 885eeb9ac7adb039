/** What the integration suites share: a Hardhat node binary, a deploy script, small waits. */
import { spawn } from "node:child_process";
import path from "node:path";

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
