/**
 * The harness that gradnet's property tests share: how many sequences run (and how to replay one),
 * cheap batched reads of the chain, a clock the model controls, events compared as strings, and
 * sending a transaction that must either emit exactly the expected events or revert with exactly
 * the expected custom error. Used by properties.test.ts and disputeProperties.test.ts.
 */
import { expect } from "chai";
import fc from "fast-check";
import hre from "hardhat";
import {
  AbiCoder,
  id,
  keccak256,
  toBeHex,
  type BaseContract,
  type ContractTransactionReceipt,
  type ContractTransactionResponse,
  type Interface,
  type Log,
  type Signer,
} from "ethers";
import type { Settlement } from "../../typechain-types";
import { DEVNET_PARAMS } from "../../deploy/config";
import { OWNER_SHARE_BPS, type FulfillmentStruct, type RequestStruct } from "./helpers";

// =============================================================================== configuration

/**
 * Sequences to run for a property whose CI default is `ciDefault`:
 *   GRADNET_PROPERTY_RUNS=N    N sequences
 *   GRADNET_PROPERTY_RUNS=x4   4 times the CI default (a fraction works too: x0.1)
 */
export function configuredRuns(ciDefault: number): number {
  const raw = process.env.GRADNET_PROPERTY_RUNS?.trim();
  if (!raw) return ciDefault;
  const times = /^(?:x\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*x)$/i.exec(raw);
  if (times) return Math.max(1, Math.round(ciDefault * Number(times[1] ?? times[2])));
  if (/^\d+$/.test(raw)) return Math.max(1, Number(raw));
  throw new Error(`GRADNET_PROPERTY_RUNS must be a count (500) or a factor (x4), not "${raw}"`);
}

/** fast-check's parameters: `numRuns`, and GRADNET_PROPERTY_SEED / PATH to replay one failure. */
export function fcParameters<T>(numRuns: number): fc.Parameters<T> {
  const params: fc.Parameters<T> = { numRuns };
  const seed = process.env.GRADNET_PROPERTY_SEED?.trim();
  if (seed) params.seed = Number(seed);
  const path = process.env.GRADNET_PROPERTY_PATH?.trim();
  if (path) params.path = path;
  return params;
}

/** Explicit gas limits: no estimation round trip, and a reverting call is mined like any other. */
export const GAS = { request: 1_000_000, fulfill: 3_000_000, batch: 12_000_000, other: 1_000_000 } as const;

// ================================================================================ chain access

export const provider = hre.network.provider;
export const coder = AbiCoder.defaultAbiCoder();

/**
 * Checking every invariant after every call takes dozens of reads per call, and each eth_call
 * costs far more than the EVM work it does. This contract makes them all in one eth_call: a
 * static call for each calldata, the target's balance for empty calldata. It is compiled here
 * with the repository's solc and placed (hardhat_setCode) at an address no contract uses.
 */
const BATCH_READER_SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

contract BatchReader {
    /// @param reads one entry after another: target (20 bytes), calldata length (2 bytes), calldata.
    /// Empty calldata reads the target's balance.
    /// @return out for each entry: the length of its result (32 bytes), then the result
    function read(bytes calldata reads) external view returns (bytes memory out) {
        for (uint256 i = 0; i < reads.length; ) {
            address target = address(bytes20(reads[i:i + 20]));
            uint256 size = uint16(bytes2(reads[i + 20:i + 22]));
            bytes memory ret;
            if (size == 0) {
                ret = abi.encode(target.balance);
            } else {
                bool ok;
                (ok, ret) = target.staticcall(reads[i + 22:i + 22 + size]);
                require(ok, "BatchReader: a read reverted");
            }
            out = bytes.concat(out, abi.encode(ret.length), ret);
            i += 22 + size;
        }
    }
}
`;
const BATCH_READER_AT = "0x0000000000000000000000000000000000ba7c4e";
const BATCH_READ_SELECTOR = id("read(bytes)").slice(0, 10);

let batchReaderCode: string | undefined;

export function batchReaderRuntimeCode(): string {
  if (batchReaderCode) return batchReaderCode;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const solc = require("solc") as { compile(input: string): string };
  const input = {
    language: "Solidity",
    sources: { "BatchReader.sol": { content: BATCH_READER_SOURCE } },
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { BatchReader: ["evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts?: Record<string, Record<string, { evm: { deployedBytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  const code = output.contracts?.["BatchReader.sol"]?.["BatchReader"]?.evm.deployedBytecode.object;
  if (errors.length > 0 || !code) {
    throw new Error("BatchReader did not compile:\n" + errors.map((e) => e.formattedMessage).join("\n"));
  }
  return (batchReaderCode = "0x" + code);
}

/** Fixtures call this, so that their snapshots include the reader. */
export async function installBatchReader(): Promise<void> {
  await provider.request({ method: "hardhat_setCode", params: [BATCH_READER_AT, batchReaderRuntimeCode()] });
}

/** One read: a view's calldata, or "0x" for the target's balance. */
export interface Read {
  to: string;
  data: string;
}

const calldataCache = new Map<string, string>();

/** The calldata of a view call, encoded once. */
export function view(iface: Interface, to: string, fn: string, ...args: unknown[]): Read {
  const key = `${to}.${fn}(${args.join(",")})`;
  let data = calldataCache.get(key);
  if (data === undefined) calldataCache.set(key, (data = iface.encodeFunctionData(fn, args)));
  return { to, data };
}

/**
 * Reads per eth_call. The reader's output grows by copying, so its memory (and gas) grows with
 * the square of the reads in one call: a few hundred would pass the call's gas cap.
 */
const READS_PER_CALL = 100;

/** Make all the reads against the latest block; each result as 32-byte words. */
export async function readAll(reads: Read[]): Promise<bigint[][]> {
  if (reads.length <= READS_PER_CALL) return readBatch(reads);
  const batches: Read[][] = [];
  for (let i = 0; i < reads.length; i += READS_PER_CALL) batches.push(reads.slice(i, i + READS_PER_CALL));
  return (await Promise.all(batches.map(readBatch))).flat();
}

async function readBatch(reads: Read[]): Promise<bigint[][]> {
  const entry = (r: Read) =>
    r.to.slice(2) + ((r.data.length - 2) / 2).toString(16).padStart(4, "0") + r.data.slice(2);
  const data = BATCH_READ_SELECTOR + coder.encode(["bytes"], ["0x" + reads.map(entry).join("")]).slice(2);
  const raw = await provider.request({
    method: "eth_call",
    params: [{ to: BATCH_READER_AT, data }, "latest"],
  });
  const out = (coder.decode(["bytes"], raw as string)[0] as string).slice(2);
  const results: bigint[][] = [];
  for (let at = 0; at < out.length;) {
    const length = 2 * Number(BigInt("0x" + out.slice(at, at + 64)));
    const result = out.slice(at + 64, at + 64 + length);
    results.push(
      Array.from({ length: length / 64 }, (_, i) => BigInt("0x" + result.slice(64 * i, 64 * i + 64))),
    );
    at += 64 + length;
  }
  if (results.length !== reads.length)
    throw new Error(`BatchReader: ${results.length} of ${reads.length} results`);
  return results;
}

export async function balanceOf(address: string): Promise<bigint> {
  return BigInt(
    (await provider.request({ method: "eth_getBalance", params: [address, "latest"] })) as string,
  );
}

export async function latestTimestamp(): Promise<number> {
  const block = (await provider.request({
    method: "eth_getBlockByNumber",
    params: ["latest", false],
  })) as { timestamp: string };
  return Number(block.timestamp);
}

/** The tests keep their own clock: every block is mined at a time the model chose. */
export async function mineAt(timestamp: number): Promise<void> {
  await provider.request({ method: "evm_mine", params: [timestamp] });
}

export async function setNextBlockTime(timestamp: number): Promise<void> {
  await provider.request({ method: "evm_setNextBlockTimestamp", params: [timestamp] });
}

/** Events as strings, so that expected and emitted events compare with one deep equal. */
export function fmt(x: unknown): string {
  if (typeof x === "bigint" || typeof x === "number") return BigInt(x).toString();
  if (typeof x === "string") return x.toLowerCase();
  if (typeof x === "boolean") return String(x);
  if (Array.isArray(x)) return `[${x.map(fmt).join(",")}]`;
  throw new Error(`cannot format ${String(x)}`);
}

export function ev(name: string, ...args: unknown[]): string {
  return `${name}(${args.map(fmt).join(",")})`;
}

export function describeLogs(logs: readonly Log[], interfaces: Map<string, Interface>): string[] {
  return logs.map((log) => {
    const parsed = interfaces.get(log.address.toLowerCase())?.parseLog(log);
    return parsed ? ev(parsed.name, ...parsed.args) : `unknown log from ${log.address}`;
  });
}

/**
 * Plain checks for the invariants, which run after every command: chai's matchers would cost more
 * than the chain does.
 */
export function holds(condition: boolean, what: string): void {
  if (!condition) expect.fail(what);
}

export function same<T>(actual: T, expected: T, what: string): void {
  if (actual !== expected) expect.fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

export function show(x: unknown): string {
  return typeof x === "string"
    ? x
    : JSON.stringify(x, (_, v: unknown) => (typeof v === "bigint" ? `${v}` : v));
}

export interface ExpectedError {
  contract: BaseContract;
  name: string;
  args: unknown[];
}

export const err = (contract: BaseContract, name: string, ...args: unknown[]): { error: ExpectedError } => ({
  error: { contract, name, args },
});

export interface Stats {
  sequences: number;
  commands: number;
  txs: number;
  reverts: number;
  noops: number;
  ms: number;
  reached: Map<string, number>;
}

export const newStats = (): Stats => ({
  sequences: 0,
  commands: 0,
  txs: 0,
  reverts: 0,
  noops: 0,
  ms: 0,
  reached: new Map(),
});

export function reached(s: Stats, what: string): void {
  s.reached.set(what, (s.reached.get(what) ?? 0) + 1);
}

export function report(name: string, s: Stats): void {
  const seen = [...s.reached.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  console.log(
    `      ${name}: ${s.sequences} sequences, ${s.commands} commands (${s.txs} transactions, ` +
      `${s.reverts} expected reverts, ${s.noops} no-ops) in ${(s.ms / 1000).toFixed(1)} s\n` +
      `        reached: ${seen}`,
  );
}

/**
 * Send one transaction in a block at `ts`. An expected error must be the revert's custom error,
 * with its arguments; otherwise the transaction must succeed and emit exactly `events`.
 */
export async function sendAt(
  ts: number,
  send: () => Promise<ContractTransactionResponse>,
  interfaces: Map<string, Interface>,
  outcome: { error: ExpectedError } | { events: string[] },
  s: Stats,
): Promise<ContractTransactionReceipt | null> {
  await setNextBlockTime(ts);
  s.txs++;
  if ("error" in outcome) {
    const e = outcome.error;
    await expect(send())
      .to.be.revertedWithCustomError(e.contract, e.name)
      .withArgs(...e.args);
    s.reverts++;
    reached(s, `revert ${e.name}`);
    return null;
  }
  const receipt = (await (await send()).wait())!;
  expect(describeLogs(receipt.logs, interfaces), "emitted events").to.deep.equal(outcome.events);
  return receipt;
}

/** The `index`th (modulo) of the entries that are `wanted`, or of all when no filter is given. */
export function choose<T>(list: T[], index: number, wanted?: (x: T) => boolean): T | undefined {
  const from = wanted ? list.filter(wanted) : list;
  return from.length > 0 ? from[index % from.length] : undefined;
}

export const weighted = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
/** One command: its `kind` and its random fields (plain data, which fast-check prints and shrinks). */
export const command = <K extends string, T extends object>(
  kind: K,
  fields: { [P in keyof T]: fc.Arbitrary<T[P]> },
) => fc.record(fields).map((f) => ({ kind, ...f }));
/** Mostly false: commands usually pick a target where they can succeed. */
export const rarely = fc.oneof(weighted(4, fc.constant(false)), weighted(1, fc.constant(true)));

export const REQUEST_TUPLE = "tuple(uint256,bytes32,address,uint32,uint64,uint256,bytes32,bool,uint8)";

export function requestTuple(r: RequestStruct): unknown[] {
  return [
    r.requestId,
    r.modelId,
    r.requester,
    r.callbackGasLimit,
    r.deadline,
    r.fee,
    r.inputHash,
    r.inputIsRef,
    r.redundancy,
  ];
}

export function requestHash(r: RequestStruct): string {
  return keccak256(coder.encode([REQUEST_TUPLE], [requestTuple(r)]));
}

export function fulfillmentHash(r: RequestStruct, f: FulfillmentStruct, hashOfR = requestHash(r)): string {
  return keccak256(
    coder.encode(["bytes32", "address", "bytes32", "uint64"], [hashOfR, f.node, f.outputHash, f.fulfilledAt]),
  );
}

const HASH_MASK = (1n << 248n) - 1n;

/** The hub's slot for a request: `state` in the top byte, the low 31 bytes of `commitment` below. */
export function commitmentSlot(state: number, commitment: string): string {
  return toBeHex((BigInt(state) << 248n) | (BigInt(commitment) & HASH_MASK), 32);
}

// ========================================================================== model bookkeeping

export type Effect = () => void;
/** What the model predicts for a call: an exact revert, or the exact events and its own changes. */
export type Outcome = { error: ExpectedError } | { events: string[]; effects: Effect[] };
export type Transact = (
  send: () => Promise<ContractTransactionResponse>,
  outcome: Outcome,
) => Promise<ContractTransactionReceipt | null>;

/** What every model keeps besides its state: its clock and what a reverted call must leave as it was. */
export interface ModelClock<O> {
  /** The timestamp of the latest block: every block is mined at a time the model chose. */
  now: number;
  /** The last observation, checked against the model. */
  last?: O;
  /** Set by a reverted call: the next observation must equal it. */
  unchanged?: { observation: O; reason: string };
}

/**
 * Send in the next block, one second after the model's clock (a reverting transaction is mined
 * too). After a revert the next observation must equal the last one.
 */
export async function sendNext<O>(
  m: ModelClock<O>,
  send: () => Promise<ContractTransactionResponse>,
  interfaces: Map<string, Interface>,
  outcome: Outcome,
  s: Stats,
): Promise<ContractTransactionReceipt | null> {
  const ts = m.now + 1;
  const receipt = await sendAt(ts, send, interfaces, outcome, s);
  m.now = ts;
  if ("error" in outcome) {
    m.unchanged = { observation: m.last!, reason: `a reverted call (${outcome.error.name}) changed state` };
    return null;
  }
  return receipt;
}

/** Keep a fresh observation; after a revert it must equal the one before. */
export function observed<O>(m: ModelClock<O>, o: O): void {
  if (m.unchanged) same(show(o), show(m.unchanged.observation), m.unchanged.reason);
  m.unchanged = undefined;
  m.last = o;
}

const BPS = 10_000n;

/** Settlement's split of a fee: the model owner's and the protocol's shares, the rest for the node(s). */
export function feeSplit(fee: bigint): { owner: bigint; protocol: bigint; nodes: bigint } {
  const owner = (fee * BigInt(OWNER_SHARE_BPS)) / BPS;
  const protocol = (fee * BigInt(DEVNET_PARAMS.settlement.protocolFeeBps)) / BPS;
  return { owner, protocol, nodes: fee - owner - protocol };
}

/**
 * `who` (at `account`) withdraws its credit, `amount` by the model, to `to`: with none it must
 * revert NothingToWithdraw; otherwise emit Withdrawn, and `to` must receive exactly `amount`.
 */
export async function withdrawCredit(
  settlement: Settlement,
  who: Signer,
  account: string,
  to: string,
  amount: bigint,
  transact: Transact,
  onWithdrawn: Effect,
): Promise<void> {
  const send = () => settlement.connect(who).withdraw(to, { gasLimit: GAS.other });
  if (amount === 0n) {
    await transact(send, err(settlement, "Settlement__NothingToWithdraw", account));
    return;
  }
  const before = await balanceOf(to);
  const receipt = await transact(send, {
    events: [ev("Withdrawn", account, to, amount)],
    effects: [onWithdrawn],
  });
  const gasPaid = to === account ? receipt!.fee : 0n;
  same((await balanceOf(to)) - before + gasPaid, amount, "the amount withdrawn is the credit");
}
