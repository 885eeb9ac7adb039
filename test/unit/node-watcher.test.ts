import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { getAddress, type Hex } from "viem";
import { FIXED_ADDRESSES, jobId, type RequestedLog } from "../../sdk";
import type { HubReader } from "../../node/chain";
import { createMetrics } from "../../node/metrics";
import {
  ChainWatcher,
  JOB_OPTIONS,
  backoffDelay,
  checkpointKey,
  nextRange,
  type CheckpointStore,
  type QueuedJob,
  type WatcherLogger,
} from "../../node/watcher";

const MODEL_A = `0x${"aa".repeat(32)}` as Hex;
const MODEL_B = `0x${"bb".repeat(32)}` as Hex;
const REQUESTER = getAddress("0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
const HUB = FIXED_ADDRESSES.inferenceHub;

function requested(requestId: bigint, blockNumber: bigint, logIndex = 0, modelId = MODEL_A): RequestedLog {
  return {
    request: {
      requestId,
      modelId,
      requester: REQUESTER,
      callbackGasLimit: 0,
      deadline: 1_900_000_000n,
      fee: 10n ** 15n,
      inputHash: `0x${"11".repeat(32)}`,
      inputIsRef: false,
      redundancy: 1,
    },
    input: "0x1234",
    blockNumber,
    txHash: `0x${blockNumber.toString(16).padStart(64, "0")}`,
    logIndex,
  };
}

const silent: WatcherLogger = { info() {}, warn() {}, error() {}, debug() {} };

/** A chain whose head and logs the test sets; records every log query. */
class FakeChain implements HubReader {
  readonly hub = HUB;
  head = 0n;
  logs: RequestedLog[] = [];
  queries: [bigint, bigint][] = [];
  failNext = 0;

  async getBlockNumber() {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("connection refused");
    }
    return this.head;
  }
  async getRequestedLogs(from: bigint, to: bigint) {
    this.queries.push([from, to]);
    return this.logs.filter((l) => l.blockNumber >= from && l.blockNumber <= to);
  }
  async getRequestState() {
    return 0;
  }
  async findRequested() {
    return undefined;
  }
  async findFulfilled() {
    return undefined;
  }
  async findRefunded() {
    return undefined;
  }
  async findReleased() {
    return undefined;
  }
}

/** A queue that keeps jobs by id, as BullMQ does: a second add of the same id is dropped. */
class FakeQueue {
  jobs = new Map<string, QueuedJob>();
  adds = 0;
  failNext = 0;
  async addBulk(jobs: QueuedJob[]) {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("redis down");
    }
    this.adds++;
    for (const j of jobs) if (!this.jobs.has(j.opts.jobId)) this.jobs.set(j.opts.jobId, j);
  }
}

class MemoryCheckpoint implements CheckpointStore {
  writes: bigint[] = [];
  constructor(public value?: bigint) {}
  async get() {
    return this.value;
  }
  async set(b: bigint) {
    this.value = b;
    this.writes.push(b);
  }
}

function watcher(
  chain: FakeChain,
  queue: FakeQueue,
  checkpoints: CheckpointStore,
  over: Partial<{ confirmations: number; startBlock: bigint; chunk: number; maxBatch: number }> = {},
) {
  return new ChainWatcher({
    chainId: 31337,
    reader: chain,
    sink: queue,
    checkpoints,
    confirmations: over.confirmations ?? 0,
    startBlock: over.startBlock ?? 0n,
    logChunkBlocks: over.chunk ?? 2000,
    maxBatch: over.maxBatch ?? 32,
    pollIntervalMs: 10,
    maxBackoffMs: 20,
    logger: silent,
    metrics: createMetrics({ defaultMetrics: false }),
  });
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("nextRange", () => {
  test("no checkpoint: starts at START_BLOCK", () => {
    assert.deepEqual(nextRange(undefined, 100n, 0, 2000, 0n), { fromBlock: 0n, toBlock: 100n });
    assert.deepEqual(nextRange(undefined, 100n, 0, 2000, 40n), { fromBlock: 40n, toBlock: 100n });
  });

  test("resumes after the checkpoint", () => {
    assert.deepEqual(nextRange(50n, 100n, 0, 2000, 0n), { fromBlock: 51n, toBlock: 100n });
  });

  test("never before START_BLOCK, even with an older checkpoint", () => {
    assert.deepEqual(nextRange(5n, 100n, 0, 2000, 40n), { fromBlock: 40n, toBlock: 100n });
  });

  test("stops `confirmations` blocks below the head", () => {
    assert.deepEqual(nextRange(50n, 100n, 2, 2000, 0n), { fromBlock: 51n, toBlock: 98n });
    assert.deepEqual(nextRange(undefined, 1n, 2, 2000, 0n), undefined, "head below the confirmations");
  });

  test("chunks at LOG_CHUNK_BLOCKS", () => {
    assert.deepEqual(nextRange(undefined, 10_000n, 0, 2000, 0n), { fromBlock: 0n, toBlock: 1999n });
    assert.deepEqual(nextRange(1999n, 10_000n, 0, 2000, 0n), { fromBlock: 2000n, toBlock: 3999n });
    assert.deepEqual(nextRange(9n, 10n, 0, 1, 0n), { fromBlock: 10n, toBlock: 10n });
  });

  test("nothing to do when caught up, or when the checkpoint is past the head", () => {
    assert.equal(nextRange(100n, 100n, 0, 2000, 0n), undefined);
    assert.equal(nextRange(99n, 100n, 1, 2000, 0n), undefined);
    assert.equal(nextRange(500n, 100n, 0, 2000, 0n), undefined);
    assert.equal(nextRange(undefined, 100n, 0, 2000, 101n), undefined);
  });

  test("ranges tile the chain: consecutive, non-overlapping, ending at the safe head", () => {
    for (const [head, conf, chunk, start] of [
      [0n, 0, 1, 0n],
      [1234n, 3, 100, 17n],
      [99n, 0, 7, 0n],
      [5000n, 12, 2000, 4000n],
    ] as const) {
      let cp: bigint | undefined;
      let expectedFrom = start;
      for (let r = nextRange(cp, head, conf, chunk, start); r; r = nextRange(cp, head, conf, chunk, start)) {
        assert.equal(r.fromBlock, expectedFrom);
        assert.ok(r.toBlock >= r.fromBlock && r.toBlock - r.fromBlock < BigInt(chunk));
        expectedFrom = r.toBlock + 1n;
        cp = r.toBlock;
      }
      const safe = head - BigInt(conf);
      assert.equal(cp ?? start - 1n, safe >= start ? safe : start - 1n);
    }
  });

  test("bad chunk or confirmations throw", () => {
    assert.throws(() => nextRange(undefined, 1n, 0, 0, 0n), RangeError);
    assert.throws(() => nextRange(undefined, 1n, -1, 10, 0n), RangeError);
  });
});

describe("watcher helpers", () => {
  test("backoff doubles from the base and is capped", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 100].map((n) => backoffDelay(n, 500, 10_000)),
      [500, 1000, 2000, 4000, 8000, 10_000, 10_000],
    );
    assert.equal(backoffDelay(0, 500), 0);
  });

  test("the checkpoint key names the chain, the hub (lower case) and the queue", () => {
    assert.equal(
      checkpointKey(31337, HUB, "gradnet-inference"),
      "gradnet:relayer:31337:0x0000000000000000000000000000000000000f10:gradnet-inference:checkpoint",
    );
  });

  test("job ids are the sdk's, which BullMQ accepts (no ':', not an integer)", () => {
    assert.equal(jobId(31337, 42n), "31337-42");
    for (const id of [jobId(1, 1n), jobId(31337, 2n ** 255n)]) {
      assert.ok(!id.includes(":"), id);
      assert.notEqual(`${parseInt(id, 10)}`, id);
    }
  });
});

describe("ChainWatcher", () => {
  test("queues one job per (block, model), with deterministic ids, then moves the checkpoint", async () => {
    const chain = new FakeChain();
    chain.head = 12n;
    chain.logs = [
      requested(1n, 3n, 0),
      requested(2n, 3n, 1),
      requested(3n, 3n, 2, MODEL_B),
      requested(4n, 7n, 0),
      requested(5n, 12n, 0),
    ];
    const queue = new FakeQueue();
    const cp = new MemoryCheckpoint();
    const w = watcher(chain, queue, cp);
    assert.equal(await w.poll(), 13);
    assert.deepEqual([...queue.jobs.keys()], ["31337-1", "31337-3", "31337-4", "31337-5"]);
    const first = queue.jobs.get("31337-1")!;
    assert.deepEqual(
      first.data.items.map((i) => i.request.requestId),
      ["1", "2"],
    );
    assert.equal(first.data.hub, HUB);
    assert.equal(first.data.chainId, 31337);
    assert.equal(first.name, "infer");
    assert.deepEqual({ ...first.opts, jobId: undefined }, { ...JOB_OPTIONS, jobId: undefined });
    assert.equal(cp.value, 12n);
    assert.equal(w.stats.requestsQueued, 5);
    assert.equal(w.stats.jobsQueued, 4);
    assert.equal(w.stats.blocksProcessed, 13);
    assert.equal(w.stats.lagBlocks, 0n);
    assert.equal(await w.poll(), 0, "nothing new");
  });

  test("works in LOG_CHUNK_BLOCKS chunks and checkpoints after each", async () => {
    const chain = new FakeChain();
    chain.head = 9n;
    chain.logs = [requested(1n, 4n)];
    const cp = new MemoryCheckpoint();
    const w = watcher(chain, new FakeQueue(), cp, { chunk: 4, startBlock: 2n });
    await w.poll();
    assert.deepEqual(chain.queries, [
      [2n, 5n],
      [6n, 9n],
    ]);
    assert.deepEqual(cp.writes, [5n, 9n]);
  });

  test("waits for confirmations", async () => {
    const chain = new FakeChain();
    chain.head = 10n;
    chain.logs = [requested(1n, 9n)];
    const queue = new FakeQueue();
    const cp = new MemoryCheckpoint();
    const w = watcher(chain, queue, cp, { confirmations: 2 });
    await w.poll();
    assert.equal(cp.value, 8n);
    assert.equal(queue.jobs.size, 0, "block 9 has one confirmation, needs two");
    chain.head = 11n;
    await w.poll();
    assert.deepEqual([...queue.jobs.keys()], ["31337-1"]);
    assert.equal(cp.value, 9n);
  });

  test("resumes from the stored checkpoint", async () => {
    const chain = new FakeChain();
    chain.head = 20n;
    chain.logs = [requested(1n, 5n), requested(2n, 15n)];
    const queue = new FakeQueue();
    const w = watcher(chain, queue, new MemoryCheckpoint(10n));
    await w.poll();
    assert.deepEqual(chain.queries, [[11n, 20n]]);
    assert.deepEqual([...queue.jobs.keys()], ["31337-2"]);
  });

  test("a failed add leaves the checkpoint; the retry queues the same ids (at-least-once)", async () => {
    const chain = new FakeChain();
    chain.head = 5n;
    chain.logs = [requested(1n, 2n), requested(2n, 4n)];
    const queue = new FakeQueue();
    queue.failNext = 1;
    const cp = new MemoryCheckpoint();
    const w = watcher(chain, queue, cp, { chunk: 3 });
    await assert.rejects(w.poll(), /redis down/);
    assert.equal(cp.value, undefined, "checkpoint not moved past jobs that were not added");
    await w.poll();
    assert.deepEqual([...queue.jobs.keys()], ["31337-1", "31337-2"]);
    assert.equal(cp.value, 5n);

    // a replay (checkpoint lost) adds the same ids, which the queue drops
    const again = watcher(chain, queue, new MemoryCheckpoint(), { chunk: 3 });
    await again.poll();
    assert.equal(queue.jobs.size, 2);
  });

  test("the loop survives RPC errors, counts them, backs off and recovers; stop() waits for it", async () => {
    const chain = new FakeChain();
    chain.head = 3n;
    chain.logs = [requested(1n, 3n)];
    chain.failNext = 3;
    const queue = new FakeQueue();
    const cp = new MemoryCheckpoint();
    const w = watcher(chain, queue, cp);
    w.start();
    assert.equal(w.stats.running, true);
    await until(() => cp.value === 3n && w.stats.consecutiveFailures === 0);
    assert.equal(cp.value, 3n);
    assert.equal(w.stats.rpcErrors, 3);
    assert.equal(w.stats.consecutiveFailures, 0);
    assert.equal(w.stats.lastError, undefined);
    assert.deepEqual([...queue.jobs.keys()], ["31337-1"]);

    chain.head = 6n;
    chain.logs.push(requested(2n, 6n));
    await until(() => cp.value === 6n);
    assert.deepEqual([...queue.jobs.keys()], ["31337-1", "31337-2"]);

    await w.stop();
    assert.equal(w.stats.running, false);
    chain.head = 9n;
    chain.logs.push(requested(3n, 9n));
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(cp.value, 6n, "a stopped watcher does nothing");
  });

  test("a checkpoint past the head (a reset devnet) is flagged, not rewound", async () => {
    const chain = new FakeChain();
    chain.head = 5n;
    const cp = new MemoryCheckpoint(100n);
    const w = watcher(chain, new FakeQueue(), cp);
    assert.equal(await w.poll(), 0);
    assert.equal(w.stats.checkpointAhead, true);
    assert.equal(cp.value, 100n);
  });
});
