import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import pino from "pino";
import type { Address, Hex } from "viem";
import { buildApi } from "../../node/api";
import {
  BatchPoster,
  BatchStore,
  DuplicateBatchResultError,
  batchIsDue,
  closeBatch,
  type BatchChain,
  type BatchRecord,
  type BatchResult,
  type OpenBatch,
  type PostedBatch,
} from "../../node/batchPoster";
import { createMetrics } from "../../node/metrics";
import { ModelStore } from "../../node/store";
import type { WatcherStats } from "../../node/watcher";
import { InvalidBatchError, batchLeaf, loadBatchTree, proofFor, verifyBatchProof } from "../../sdk";

const PAYER = "0x00000000000000000000000000000000000000b1" as Address;
const PAYER2 = "0x00000000000000000000000000000000000000b2" as Address;
const NODE = "0x00000000000000000000000000000000000000a1" as Address;
const MODEL = `0x${"11".repeat(32)}` as Hex;
const MODEL2 = `0x${"22".repeat(32)}` as Hex;
const h = (n: number | bigint): Hex => `0x${n.toString(16).padStart(64, "0")}`;
const result = (id: number, fee = 10n): BatchResult => ({
  requestId: BigInt(id),
  inputHash: h(1000 + id),
  outputHash: h(2000 + id),
  fee,
});
const silent = pino({ level: "silent" });

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-batch-poster-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let dirs = 0;
const tmpDir = () => path.join(tmpRoot, String(dirs++));

/** A chain that records posts, numbers batches from 1, and fails on demand. */
class FakeChain implements BatchChain {
  readonly node = NODE;
  block = 100n;
  posts: BatchRecord[] = [];
  /** Landed on chain (whether or not the sender heard back). */
  landed: { root: Hex; block: bigint; batchId: bigint }[] = [];
  /** The next posts throw: "revert" before landing, "lost" after landing (a lost receipt). */
  failures: ("revert" | "lost")[] = [];

  async getBlockNumber() {
    return this.block;
  }
  async postBatch(record: BatchRecord): Promise<PostedBatch> {
    const failure = this.failures.shift();
    if (failure === "revert") throw new Error("BatchSettlement__AllowanceExceeded");
    this.block += 1n;
    this.posts.push(structuredClone(record));
    const batchId = BigInt(this.landed.length + 1);
    this.landed.push({ root: record.root, block: this.block, batchId });
    if (failure === "lost") throw new Error("timed out waiting for the receipt");
    return { batchId, txHash: h(batchId * 7n) };
  }
  async findPosted(root: Hex, fromBlock: bigint) {
    const l = this.landed.find((x) => x.root === root && x.block >= fromBlock);
    return l === undefined ? undefined : { batchId: l.batchId, txHash: h(l.batchId * 7n) };
  }
}

function poster(
  chain: BatchChain,
  store: BatchStore,
  clock: { now: number },
  maxLeaves = 3,
  maxAgeMs = 1000,
) {
  return new BatchPoster({
    chain,
    store,
    policy: { maxLeaves, maxAgeMs },
    intervalMs: 10,
    logger: silent,
    now: () => clock.now,
  });
}

describe("batch decisions", () => {
  const open = (n: number, openedAt = 0): OpenBatch => ({
    payer: PAYER,
    modelId: MODEL,
    results: Array.from({ length: n }, (_, i) => result(i + 1)),
    openedAt,
  });
  const policy = { maxLeaves: 3, maxAgeMs: 1000 };

  test("a batch is due at maxLeaves results or maxAgeMs after its first, never when empty", () => {
    assert.equal(batchIsDue(open(2, 0), 999, policy), false);
    assert.equal(batchIsDue(open(3, 0), 0, policy), true);
    assert.equal(batchIsDue(open(1, 0), 1000, policy), true);
    assert.equal(batchIsDue(open(0, 0), 10_000, policy), false);
  });

  test("closing a batch sums its fees and commits to its results with a tree whose proofs verify", () => {
    const batch = open(5);
    batch.results[4]!.fee = 7n;
    const record = closeBatch(batch);
    assert.equal(record.leafCount, 5);
    assert.equal(record.totalFee, "47");
    assert.equal(record.fees["5"], "7");
    assert.equal(record.payer, PAYER);
    assert.equal(record.modelId, MODEL);
    const tree = loadBatchTree(JSON.parse(JSON.stringify(record.tree)));
    assert.equal(tree.root, record.root);
    for (const r of batch.results)
      assert.ok(verifyBatchProof(record.root, r, proofFor(tree, r.requestId)), `result ${r.requestId}`);
  });
});

describe("batch store", () => {
  test("keeps records by root, rewrites them whole, and lists the unposted ones", async () => {
    const store = new BatchStore(tmpDir());
    await store.init();
    const a = closeBatch({ payer: PAYER, modelId: MODEL, results: [result(1)], openedAt: 0 });
    const b = closeBatch({ payer: PAYER, modelId: MODEL, results: [result(2)], openedAt: 0 });
    await store.put(a);
    await store.put(b);
    assert.deepEqual(await store.get(a.root), a);
    assert.equal((await store.tree(b.root))!.root, b.root);
    assert.equal(await store.get(h(5)), undefined);
    assert.deepEqual((await store.unposted()).map((r) => r.root).sort(), [a.root, b.root].sort());
    await store.put({ ...a, posted: { batchId: "1", txHash: h(1) } });
    assert.deepEqual(
      (await store.unposted()).map((r) => r.root),
      [b.root],
    );
    assert.deepEqual(fs.readdirSync(store.dir).sort(), [`${a.root}.json`, `${b.root}.json`].sort());
  });

  test("refuses a path that is not a root", () => {
    const store = new BatchStore(tmpDir());
    assert.throws(() => store.pathOf("../../etc/passwd"), InvalidBatchError);
    assert.throws(() => store.pathOf("0x1234"), InvalidBatchError);
  });
});

describe("batch poster", () => {
  test("posts a payer's results when the batch is full, one batch per payer and model", async () => {
    const chain = new FakeChain();
    const store = new BatchStore(tmpDir());
    const clock = { now: 0 };
    const p = poster(chain, store, clock);
    for (const id of [1, 2]) p.add(PAYER, MODEL, result(id));
    p.add(PAYER, MODEL2, result(3));
    p.add(PAYER2, MODEL, result(4));
    assert.deepEqual(await p.tick(), [], "nothing is due yet");
    p.add(PAYER, MODEL, result(5, 30n));
    const posted = await p.tick();
    assert.equal(posted.length, 1);
    const record = chain.posts[0]!;
    assert.equal(record.payer, PAYER);
    assert.equal(record.modelId, MODEL);
    assert.equal(record.leafCount, 3);
    assert.equal(record.totalFee, "50");
    assert.equal(p.pendingResults(), 2);
    // Stored with its batch id, and every result provable.
    const stored = (await store.get(record.root))!;
    assert.deepEqual(stored.posted, { batchId: "1", txHash: posted[0]!.txHash });
    const tree = loadBatchTree(stored.tree);
    for (const r of [result(1), result(2), result(5, 30n)])
      assert.ok(verifyBatchProof(record.root, r, proofFor(tree, r.requestId)));
  });

  test("posts a batch maxAgeMs after its first result, however small", async () => {
    const chain = new FakeChain();
    const clock = { now: 1000 };
    const p = poster(chain, new BatchStore(tmpDir()), clock);
    p.add(PAYER, MODEL, result(1));
    clock.now = 1999;
    assert.equal((await p.tick()).length, 0);
    clock.now = 2000;
    assert.equal((await p.tick()).length, 1);
    assert.equal(chain.posts[0]!.leafCount, 1);
    assert.equal(p.pendingResults(), 0);
  });

  test("flush posts everything; results beyond maxLeaves go into further batches", async () => {
    const chain = new FakeChain();
    const p = poster(chain, new BatchStore(tmpDir()), { now: 0 });
    for (let id = 1; id <= 7; id++) p.add(PAYER, MODEL, result(id));
    assert.equal((await p.flush()).length, 3);
    assert.deepEqual(
      chain.posts.map((r) => r.leafCount),
      [3, 3, 1],
    );
  });

  test("refuses a repeated request id and a malformed result", () => {
    const p = poster(new FakeChain(), new BatchStore(tmpDir()), { now: 0 });
    p.add(PAYER, MODEL, result(1));
    assert.throws(() => p.add(PAYER, MODEL, result(1)), DuplicateBatchResultError);
    p.add(PAYER, MODEL2, result(1)); // another model's batch may hold the same id
    assert.throws(() => p.add(PAYER, MODEL, { ...result(2), outputHash: "0x12" }), InvalidBatchError);
    assert.throws(() => p.add(PAYER, MODEL, result(3, -1n)), InvalidBatchError);
  });

  test("a failed post is retried; one failing batch does not hold up another", async () => {
    const chain = new FakeChain();
    const p = poster(chain, new BatchStore(tmpDir()), { now: 0 }, 1);
    p.add(PAYER, MODEL, result(1));
    p.add(PAYER2, MODEL, result(2));
    chain.failures = ["revert"];
    await assert.rejects(p.tick(), /AllowanceExceeded/);
    assert.equal(chain.posts.length, 1, "the second batch was posted");
    assert.equal(p.pendingResults(), 1);
    assert.equal((await p.tick()).length, 1);
    assert.equal(chain.posts.length, 2);
    assert.equal(p.pendingResults(), 0);
  });

  test("pendingFees counts a payer's open and closed unposted results until they land", async () => {
    const chain = new FakeChain();
    const p = poster(chain, new BatchStore(tmpDir()), { now: 0 }, 2);
    p.add(PAYER, MODEL, result(1, 5n));
    p.add(PAYER, MODEL2, result(2, 7n));
    p.add(PAYER2, MODEL, result(3, 100n));
    assert.equal(p.pendingFees(PAYER), 12n, "open results of both models");
    assert.equal(p.pendingFees(PAYER.toUpperCase().replace("0X", "0x") as Address), 12n);
    assert.equal(p.pendingFees(PAYER2), 100n);
    p.add(PAYER, MODEL, result(4, 11n));
    chain.failures = ["revert"];
    // The full batch (1 + 4) closes and fails to post: its fees stay pending.
    await assert.rejects(p.tick(), /AllowanceExceeded/);
    assert.equal(p.pendingFees(PAYER), 23n);
    await p.tick();
    assert.equal(p.pendingFees(PAYER), 7n, "only the open MODEL2 result is left");
    await p.flush();
    assert.equal(p.pendingFees(PAYER), 0n);
    assert.equal(p.pendingFees(PAYER2), 0n);
  });

  test("a send whose receipt was lost is found on chain, never posted twice", async () => {
    const chain = new FakeChain();
    const store = new BatchStore(tmpDir());
    const p = poster(chain, store, { now: 0 }, 2);
    p.add(PAYER, MODEL, result(1));
    p.add(PAYER, MODEL, result(2));
    chain.failures = ["lost"];
    await assert.rejects(p.tick(), /receipt/);
    assert.equal(chain.posts.length, 1);
    const [posted] = await p.tick();
    assert.equal(posted!.batchId, 1n);
    assert.equal(chain.posts.length, 1, "not sent again");
    assert.equal((await store.get(chain.posts[0]!.root))!.posted?.batchId, "1");
  });

  test("after a restart, closed batches left on disk are posted once", async () => {
    const chain = new FakeChain();
    const dir = tmpDir();
    const first = poster(chain, new BatchStore(dir), { now: 0 }, 2);
    first.add(PAYER, MODEL, result(1));
    first.add(PAYER, MODEL, result(2));
    first.add(PAYER2, MODEL, result(3));
    first.add(PAYER2, MODEL, result(4));
    chain.failures = ["lost", "revert"]; // one landed unheard, one never landed; then the process dies
    await assert.rejects(first.tick());
    assert.equal(chain.landed.length, 1);

    const second = poster(chain, new BatchStore(dir), { now: 0 }, 2);
    assert.equal(await second.recover(), 2);
    assert.equal(second.pendingResults(), 4);
    const posted = await second.tick();
    assert.deepEqual(posted.map((x) => x.batchId).sort(), [1n, 2n]);
    assert.equal(chain.landed.length, 2, "each batch on chain exactly once");
    assert.deepEqual(await new BatchStore(dir).unposted(), []);
  });

  test("start/stop runs the loop in the background", async () => {
    const chain = new FakeChain();
    const p = poster(chain, new BatchStore(tmpDir()), { now: 0 }, 1);
    p.start();
    p.add(PAYER, MODEL, result(9));
    for (let i = 0; i < 100 && chain.posts.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await p.stop();
    assert.equal(chain.posts.length, 1);
    assert.equal(chain.posts[0]!.root, batchLeaf(result(9)));
  });
});

describe("GET /batches/:batchId/proof/:requestId", () => {
  /** The API with only what the route reads: batch roots (by id) and the batch store. */
  async function api(store: BatchStore, roots: Map<bigint, Hex>, chainDown = { value: false }) {
    const unused = async (): Promise<never> => {
      throw new Error("not read by this route");
    };
    return buildApi({
      chainId: 31337,
      reader: {
        hub: NODE,
        getBlockNumber: unused,
        getRequestedLogs: unused,
        getRequestState: unused,
        findRequested: unused,
        findFulfilled: unused,
        findRefunded: unused,
        findReleased: unused,
      },
      store: new ModelStore(tmpDir()),
      queue: { getJobCounts: unused },
      redis: { ping: unused },
      watcher: { stats: {} as WatcherStats },
      metrics: createMetrics({ defaultMetrics: false }),
      logger: silent,
      maxModelBytes: 1024,
      publicUrl: () => "http://relayer.test",
      batches: {
        store,
        async rootOf(batchId) {
          if (chainDown.value) throw new Error("ECONNREFUSED 127.0.0.1:8545");
          return roots.get(batchId);
        },
      },
    });
  }

  test("serves a stored result's proof against the root on chain, and says why when it cannot", async () => {
    const store = new BatchStore(tmpDir());
    const results = [result(11, 5n), result(12, 6n), result(13, 7n)];
    const record = closeBatch({ payer: PAYER, modelId: MODEL, results, openedAt: 0 });
    await store.put(record);
    const chainDown = { value: false };
    const app = await api(
      store,
      new Map([
        [4n, record.root],
        [5n, h(99)],
      ]),
      chainDown,
    );
    try {
      const ok = await app.inject({ method: "GET", url: "/batches/4/proof/12" });
      assert.equal(ok.statusCode, 200);
      const body = ok.json() as Record<string, unknown> & { proof: Hex[] };
      assert.deepEqual(
        { ...body, proof: undefined },
        {
          batchId: "4",
          root: record.root,
          payer: PAYER,
          modelId: MODEL,
          requestId: "12",
          inputHash: results[1]!.inputHash,
          outputHash: results[1]!.outputHash,
          fee: "6",
          proof: undefined,
        },
      );
      assert.ok(verifyBatchProof(record.root, results[1]!, body.proof));

      const error = async (url: string, status: number, code: string) => {
        const res = await app.inject({ method: "GET", url });
        assert.equal(res.statusCode, status, url);
        assert.equal((res.json() as { error: string }).error, code, url);
      };
      await error("/batches/6/proof/12", 404, "UNKNOWN_BATCH");
      await error("/batches/5/proof/12", 404, "BATCH_NOT_STORED");
      await error("/batches/4/proof/14", 404, "UNKNOWN_RESULT");
      await error("/batches/x/proof/12", 400, "BAD_REQUEST");
      await error(`/batches/${1n << 256n}/proof/12`, 400, "BAD_REQUEST");
      chainDown.value = true;
      await error("/batches/4/proof/12", 502, "CHAIN_UNAVAILABLE");
    } finally {
      await app.close();
    }
  });
});
