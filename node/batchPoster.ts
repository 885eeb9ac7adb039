/**
 * The batch poster: results of inference served off chain (paid from a payer's deposit in
 * BatchSettlement) are collected per (payer, model) and posted as one Merkle root when a batch
 * holds `maxLeaves` results or its first result is `maxAgeMs` old (docs/protocol.md, "Batch
 * settlement").
 *
 * Each closed batch is written to disk before it is sent, as `<dir>/<root>.json` (the tree's dump,
 * each result's fee, and once posted the batch id), so that:
 *   - proofs can be served for as long as the file is kept (`GET /batches/:batchId/proof/:requestId`
 *     reads the root from the chain and the leaves from here);
 *   - a restart sends every closed batch that is not known to be posted; a batch whose send may
 *     have landed (the process died, or the receipt was lost) is first looked up on chain by its
 *     root, so it is never posted, and paid, twice.
 *
 * Pure core (`batchIsDue`, `closeBatch`) and adapters: the disk store (`BatchStore`) and the
 * chain (`BatchChain`, `viemBatchChain`).
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Counter, Gauge, type Registry } from "prom-client";
import {
  createWalletClient,
  http,
  parseEventLogs,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { nonceManager, privateKeyToAccount } from "viem/accounts";
import {
  GradnetError,
  InvalidBatchError,
  batchLeaf,
  batchSettlementAbi,
  buildBatchTree,
  loadBatchTree,
  type BatchTree,
  type BatchTreeDump,
} from "../sdk";
import { HASH_PATTERN } from "./store";
import { backoffDelay, type WatcherLogger } from "./watcher";
import { BackgroundLoop } from "./loop";

// ------------------------------------------------------------------------------- pure core

/** One result served off chain, and what the payer owes for it. */
export interface BatchResult {
  requestId: bigint;
  inputHash: Hex;
  outputHash: Hex;
  /** wei */
  fee: bigint;
}

export interface BatchPolicy {
  /** Post as soon as a batch holds this many results. */
  maxLeaves: number;
  /** Post a batch this long after its first result, however few it holds. */
  maxAgeMs: number;
}

/** Results collected for one payer and one model, not yet posted. */
export interface OpenBatch {
  payer: Address;
  modelId: Hex;
  results: BatchResult[];
  /** When the first result arrived (ms). */
  openedAt: number;
}

/** Whether `batch` should be posted now. Pure. */
export function batchIsDue(batch: OpenBatch, nowMs: number, policy: BatchPolicy): boolean {
  if (batch.results.length === 0) return false;
  return batch.results.length >= policy.maxLeaves || nowMs - batch.openedAt >= policy.maxAgeMs;
}

/** A closed batch as stored on disk: enough to post it, and to prove any of its results. */
export interface BatchRecord {
  format: "gradnet-batch-v1";
  payer: Address;
  modelId: Hex;
  root: Hex;
  leafCount: number;
  /** wei, decimal */
  totalFee: string;
  /** Each result's fee (wei, decimal), by request id (decimal). */
  fees: Record<string, string>;
  tree: BatchTreeDump;
  /** The block before the first send: where to look for the batch if the send's fate is unknown. */
  sentFromBlock?: string;
  /** Set once the batch is known to be on chain. */
  posted?: { batchId: string; txHash: Hex };
}

/** Close a batch: its tree, root and total fee. Pure; throws InvalidBatchError. */
export function closeBatch(batch: OpenBatch): BatchRecord {
  const tree = buildBatchTree(batch.results);
  const fees: Record<string, string> = {};
  let total = 0n;
  for (const r of batch.results) {
    fees[r.requestId.toString()] = r.fee.toString();
    total += r.fee;
  }
  return {
    format: "gradnet-batch-v1",
    payer: batch.payer,
    modelId: batch.modelId,
    root: tree.root as Hex,
    leafCount: batch.results.length,
    totalFee: total.toString(),
    fees,
    tree: tree.dump(),
  };
}

// ------------------------------------------------------------------------------ disk store

/** Batch records on disk, one JSON file per root: `<dir>/<root>.json`. */
export class BatchStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  async init(): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true });
  }

  /** Only a well-formed root gets a path, so no path can escape `dir`. */
  pathOf(root: string): string {
    const r = root.toLowerCase();
    if (!HASH_PATTERN.test(r)) throw new InvalidBatchError(`"${root.slice(0, 80)}" is not a Merkle root`);
    return path.join(this.dir, `${r}.json`);
  }

  /** Write (or overwrite) a record; a reader never sees a partial file. */
  async put(record: BatchRecord): Promise<void> {
    const file = this.pathOf(record.root);
    await fs.promises.mkdir(this.dir, { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    try {
      const handle = await fs.promises.open(tmp, "wx");
      try {
        await handle.writeFile(JSON.stringify(record));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.promises.rename(tmp, file);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
  }

  /** The record with this root, if the store holds it. */
  async get(root: string): Promise<BatchRecord | undefined> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.pathOf(root), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const record = JSON.parse(text) as BatchRecord;
    if (record.format !== "gradnet-batch-v1" || record.root.toLowerCase() !== root.toLowerCase())
      throw new InvalidBatchError(`${this.pathOf(root)} is not the batch record of root ${root}`);
    return record;
  }

  /** The tree of the batch with this root, if the store holds it. */
  async tree(root: string): Promise<BatchTree | undefined> {
    const record = await this.get(root);
    return record === undefined ? undefined : loadBatchTree(record.tree);
  }

  /** Every record not known to be posted, oldest file first. */
  async unposted(): Promise<BatchRecord[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const found: { record: BatchRecord; mtime: number }[] = [];
    for (const name of names) {
      if (!/^0x[0-9a-f]{64}\.json$/.test(name)) continue;
      const record = await this.get(name.slice(0, 66));
      if (record !== undefined && record.posted === undefined) {
        const { mtimeMs } = await fs.promises.stat(path.join(this.dir, name));
        found.push({ record, mtime: mtimeMs });
      }
    }
    return found.sort((a, b) => a.mtime - b.mtime).map((f) => f.record);
  }
}

// -------------------------------------------------------------------------------- chain

export interface PostedBatch {
  batchId: bigint;
  txHash: Hex;
}

/** The poster's window on the chain; `viemBatchChain` is the real one. */
export interface BatchChain {
  /** The inference node that posts (and is paid). */
  readonly node: Address;
  getBlockNumber(): Promise<bigint>;
  /** Simulate, send and wait for `postBatch`; throws (a viem error) on a revert. */
  postBatch(record: BatchRecord): Promise<PostedBatch>;
  /** The batch this node posted with `root` at or after `fromBlock`, if there is one. */
  findPosted(root: Hex, fromBlock: bigint): Promise<PostedBatch | undefined>;
}

export function viemBatchChain(opts: {
  publicClient: PublicClient;
  rpcUrl: string;
  chain?: Chain;
  privateKey: Hex;
  batchSettlement: Address;
}): BatchChain {
  const { publicClient, batchSettlement: address } = opts;
  const account = privateKeyToAccount(opts.privateKey, { nonceManager });
  const wallet: WalletClient<Transport, Chain | undefined, Account> = createWalletClient({
    account,
    chain: opts.chain,
    transport: http(opts.rpcUrl, { retryCount: 2, timeout: 30_000 }),
  });
  return {
    node: account.address,
    getBlockNumber: () => publicClient.getBlockNumber({ cacheTime: 0 }),
    async postBatch(record) {
      const { request } = await publicClient.simulateContract({
        account,
        address,
        abi: batchSettlementAbi,
        functionName: "postBatch",
        args: [record.payer, record.modelId, record.root, record.leafCount, BigInt(record.totalFee)],
      });
      const hash = await wallet.writeContract(request as Parameters<typeof wallet.writeContract>[0]);
      const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
      if (receipt.status !== "success") throw new Error(`postBatch transaction ${hash} reverted`);
      const [posted] = parseEventLogs({
        abi: batchSettlementAbi,
        eventName: "BatchPosted",
        logs: receipt.logs,
      });
      if (posted === undefined) throw new Error(`postBatch transaction ${hash} emitted no BatchPosted`);
      return { batchId: posted.args.batchId, txHash: hash };
    },
    async findPosted(root, fromBlock) {
      const logs = await publicClient.getContractEvents({
        address,
        abi: batchSettlementAbi,
        eventName: "BatchPosted",
        args: { node: account.address },
        fromBlock,
        strict: true,
      });
      const log = logs.find((l) => l.args.root.toLowerCase() === root.toLowerCase());
      if (log === undefined || log.transactionHash === null) return undefined;
      return { batchId: log.args.batchId, txHash: log.transactionHash };
    },
  };
}

/** The root of batch `batchId` on chain; undefined when there is no such batch. */
export async function readBatchRoot(
  publicClient: Pick<PublicClient, "readContract">,
  batchSettlement: Address,
  batchId: bigint,
): Promise<Hex | undefined> {
  const batch = await publicClient.readContract({
    address: batchSettlement,
    abi: batchSettlementAbi,
    functionName: "batch",
    args: [batchId],
  });
  return /^0x0{64}$/.test(batch.root) ? undefined : batch.root;
}

// -------------------------------------------------------------------------------- poster

/** A result for a request id the open batch already holds. */
export class DuplicateBatchResultError extends GradnetError {
  constructor(
    readonly requestId: bigint,
    readonly payer: Address,
    readonly modelId: Hex,
  ) {
    super(
      "DUPLICATE_BATCH_RESULT",
      `request ${requestId} is already in the open batch of payer ${payer}, model ${modelId}`,
    );
  }
}

export interface BatchPosterMetrics {
  batchesPosted: Counter;
  resultsPosted: Counter;
  errors: Counter;
  pendingResults: Gauge;
}

export function createBatchPosterMetrics(registry: Registry): BatchPosterMetrics {
  const registers = [registry];
  return {
    batchesPosted: new Counter({
      name: "gradnet_batch_poster_batches_posted_total",
      help: "Merkle batches posted (BatchSettlement.postBatch)",
      registers,
    }),
    resultsPosted: new Counter({
      name: "gradnet_batch_poster_results_posted_total",
      help: "Off-chain results committed in posted batches",
      registers,
    }),
    errors: new Counter({
      name: "gradnet_batch_poster_errors_total",
      help: "Failed posts (each is retried on the next loop, with backoff)",
      registers,
    }),
    pendingResults: new Gauge({
      name: "gradnet_batch_poster_pending_results",
      help: "Results collected or closed but not yet posted",
      registers,
    }),
  };
}

export interface BatchPosterOptions {
  chain: BatchChain;
  store: BatchStore;
  policy: BatchPolicy;
  /** Pause between loops of `start()`. */
  intervalMs: number;
  logger: WatcherLogger;
  metrics?: BatchPosterMetrics;
  /** The clock; default Date.now. */
  now?: () => number;
  /** Cap of the retry backoff; default 10 s. */
  maxBackoffMs?: number;
}

/** Posts closed batches in the background (`start`/`stop`). Stopping leaves open batches in memory;
 * closed ones are on disk and are posted after a restart. */
export class BatchPoster extends BackgroundLoop {
  private readonly open = new Map<string, OpenBatch>();
  /** Closed batches, written to disk, waiting to be posted (oldest first). */
  private closed: BatchRecord[] = [];
  private readonly now: () => number;
  private consecutiveFailures = 0;
  private ticking: Promise<PostedBatch[]> | undefined;

  constructor(private readonly opts: BatchPosterOptions) {
    super();
    if (
      !Number.isInteger(opts.policy.maxLeaves) ||
      opts.policy.maxLeaves < 1 ||
      opts.policy.maxLeaves > 2 ** 32 - 1
    )
      throw new RangeError("maxLeaves must be an integer from 1 to 2^32 - 1");
    this.now = opts.now ?? Date.now;
  }

  /** Collect one result for `payer` and model `modelId`. Throws on a malformed or repeated result. */
  add(payer: Address, modelId: Hex, result: BatchResult): void {
    batchLeaf(result); // validates the id and hashes
    if (result.fee < 0n) throw new InvalidBatchError(`request ${result.requestId} has a negative fee`);
    const key = `${payer.toLowerCase()}:${modelId.toLowerCase()}`;
    let batch = this.open.get(key);
    if (batch === undefined) {
      batch = { payer, modelId, results: [], openedAt: this.now() };
      this.open.set(key, batch);
    } else if (batch.results.some((r) => r.requestId === result.requestId)) {
      throw new DuplicateBatchResultError(result.requestId, payer, modelId);
    }
    batch.results.push({ ...result });
    this.observe();
    // A full batch need not wait for the loop's next turn.
    if (batch.results.length >= this.opts.policy.maxLeaves) this.nudge();
  }

  /**
   * What `payer` owes for results collected or closed and not yet known to be posted, wei: the
   * part of the payer's deposit this node has promised itself but not yet escrowed on chain.
   */
  pendingFees(payer: Address): bigint {
    const p = payer.toLowerCase();
    let total = 0n;
    for (const b of this.open.values())
      if (b.payer.toLowerCase() === p) for (const r of b.results) total += r.fee;
    for (const r of this.closed) if (r.payer.toLowerCase() === p) total += BigInt(r.totalFee);
    return total;
  }

  /** Results collected or closed, not yet posted. */
  pendingResults(): number {
    let n = 0;
    for (const b of this.open.values()) n += b.results.length;
    for (const r of this.closed) n += r.leafCount;
    return n;
  }

  /** Take up the closed batches a previous run left unposted. Call once, before `start`/`tick`. */
  async recover(): Promise<number> {
    await this.opts.store.init();
    const known = new Set(this.closed.map((r) => r.root));
    const found = (await this.opts.store.unposted()).filter((r) => !known.has(r.root));
    this.closed.push(...found);
    this.observe();
    return found.length;
  }

  /**
   * Close the batches that are due, then post every closed batch. A batch that fails stays closed
   * and is retried next time; the first failure is thrown after the others were tried.
   */
  tick(): Promise<PostedBatch[]> {
    return this.exclusive(() => this.closeAndPost(false));
  }

  /** Close every open batch, however small or young, and post everything. */
  flush(): Promise<PostedBatch[]> {
    return this.exclusive(() => this.closeAndPost(true));
  }

  private async exclusive(fn: () => Promise<PostedBatch[]>): Promise<PostedBatch[]> {
    while (this.ticking !== undefined) await this.ticking.catch(() => undefined);
    const p = fn();
    this.ticking = p;
    try {
      return await p;
    } finally {
      this.ticking = undefined;
    }
  }

  private async closeAndPost(all: boolean): Promise<PostedBatch[]> {
    const { opts } = this;
    const now = this.now();
    for (const [key, batch] of this.open) {
      if (!all && !batchIsDue(batch, now, opts.policy)) continue;
      // Close in chunks of maxLeaves, each written to disk before anything is sent.
      for (let i = 0; i < batch.results.length; i += opts.policy.maxLeaves) {
        const record = closeBatch({ ...batch, results: batch.results.slice(i, i + opts.policy.maxLeaves) });
        await opts.store.put(record);
        this.closed.push(record);
      }
      this.open.delete(key);
    }
    this.observe();

    // One batch that cannot be posted (say, its payer's allowance ran out) holds up no other.
    const posted: PostedBatch[] = [];
    let failed: unknown;
    for (const record of [...this.closed]) {
      if (this.stopping && !all) break;
      try {
        posted.push(await this.post(record));
        this.closed = this.closed.filter((r) => r !== record);
        this.observe();
      } catch (err) {
        failed ??= err;
        opts.metrics?.errors.inc();
        opts.logger.error(
          { root: record.root, payer: record.payer, leafCount: record.leafCount, err: errorMessage(err) },
          "batch poster: postBatch failed; retrying next loop",
        );
      }
    }
    if (failed !== undefined) throw failed;
    return posted;
  }

  /** Post one closed batch, unless an earlier send of it already landed. */
  private async post(record: BatchRecord): Promise<PostedBatch> {
    const { chain, store, logger, metrics } = this.opts;
    let posted: PostedBatch | undefined;
    if (record.sentFromBlock !== undefined) {
      posted = await chain.findPosted(record.root, BigInt(record.sentFromBlock));
      if (posted !== undefined)
        logger.info(
          { root: record.root, batchId: posted.batchId.toString() },
          "batch poster: found an earlier send on chain",
        );
    }
    if (posted === undefined) {
      record.sentFromBlock = (await chain.getBlockNumber()).toString();
      await store.put(record);
      posted = await chain.postBatch(record);
    }
    record.posted = { batchId: posted.batchId.toString(), txHash: posted.txHash };
    await store.put(record);
    metrics?.batchesPosted.inc();
    metrics?.resultsPosted.inc(record.leafCount);
    logger.info(
      {
        batchId: posted.batchId.toString(),
        root: record.root,
        payer: record.payer,
        modelId: record.modelId,
        leafCount: record.leafCount,
        totalFee: record.totalFee,
        tx: posted.txHash,
      },
      `batch poster: posted batch ${posted.batchId} of ${record.leafCount} results`,
    );
    return posted;
  }

  private observe(): void {
    this.opts.metrics?.pendingResults.set(this.pendingResults());
  }

  protected async run(): Promise<void> {
    const { opts } = this;
    while (!this.stopping) {
      let delay = opts.intervalMs;
      try {
        await this.tick();
        this.consecutiveFailures = 0;
      } catch {
        this.consecutiveFailures += 1;
        delay = backoffDelay(this.consecutiveFailures, Math.max(opts.intervalMs, 250), opts.maxBackoffMs);
      }
      if (!this.stopping) await this.sleep(delay);
    }
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return (err as Error & { shortMessage?: string }).shortMessage ?? err.message;
  return String(err);
}
