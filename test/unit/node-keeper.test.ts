import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ContractFunctionRevertedError, encodeErrorResult, type Address, type Hex } from "viem";
import { ConfigError, parseConfig } from "../../node/config";
import {
  Keeper,
  applyEvent,
  chunks,
  dueActions,
  splitAnswers,
  keeperCheckpointKey,
  recheck,
  type KeeperChain,
  type KeeperEvent,
  type TrackedRequest,
} from "../../node/keeper";
import { inferenceHubAbi, type Fulfillment, type Request } from "../../sdk";

const NODE = "0x00000000000000000000000000000000000000a1" as Address;
const KEY = `0x${"ab".repeat(32)}` as Hex;

function request(id: bigint, deadline: bigint): Request {
  return {
    requestId: id,
    modelId: `0x${"11".repeat(32)}`,
    requester: "0x00000000000000000000000000000000000000b2",
    callbackGasLimit: 0,
    deadline,
    fee: 1000n,
    inputHash: `0x${"22".repeat(32)}`,
    inputIsRef: false,
    redundancy: 1,
  };
}

function fulfillment(fulfilledAt: bigint): Fulfillment {
  return { node: NODE, outputHash: `0x${"33".repeat(32)}`, fulfilledAt };
}

const pending = (id: bigint, deadline: bigint): TrackedRequest => ({
  request: request(id, deadline),
  state: "Pending",
});
const fulfilled = (id: bigint, at: bigint): TrackedRequest => ({
  request: request(id, at + 3600n),
  state: "Fulfilled",
  fulfillment: fulfillment(at),
});
const ids = (ts: readonly TrackedRequest[]) => ts.map((t) => t.request.requestId);

describe("keeper decisions (dueActions)", () => {
  test("a fulfilled request is due once fulfilledAt + window <= now, not before", () => {
    const t = [fulfilled(1n, 1000n)];
    assert.deepEqual(ids(dueActions(t, 1059n, 60n).finalize), []);
    assert.deepEqual(ids(dueActions(t, 1060n, 60n).finalize), [1n]);
    assert.deepEqual(ids(dueActions(t, 5000n, 60n).finalize), [1n]);
    assert.deepEqual(dueActions(t, 5000n, 60n).refund, [], "a fulfilled request is never refunded");
  });

  test("a zero challenge window finalises at once", () => {
    assert.deepEqual(ids(dueActions([fulfilled(1n, 1000n)], 1000n, 0n).finalize), [1n]);
  });

  test("a pending request is refundable only strictly after its deadline", () => {
    const t = [pending(2n, 2000n)];
    assert.deepEqual(ids(dueActions(t, 1999n, 60n).refund), []);
    assert.deepEqual(ids(dueActions(t, 2000n, 60n).refund), [], "at the deadline it can still be answered");
    assert.deepEqual(ids(dueActions(t, 2001n, 60n).refund), [2n]);
    assert.deepEqual(dueActions(t, 9999n, 60n).finalize, [], "a pending request is never finalised");
  });

  test("mixed sets are split and sorted by request id; the fulfilment is carried", () => {
    const t = [
      pending(9n, 100n),
      fulfilled(5n, 10n),
      pending(3n, 500n),
      fulfilled(1n, 50n),
      fulfilled(7n, 400n),
    ];
    const due = dueActions(t, 200n, 60n);
    assert.deepEqual(ids(due.finalize), [1n, 5n]);
    assert.deepEqual(ids(due.refund), [9n]);
    assert.deepEqual(due.finalize[0]!.fulfillment, fulfillment(50n));
  });

  test("a Fulfilled entry without a fulfilment is never acted on", () => {
    const broken: TrackedRequest = { request: request(1n, 0n), state: "Fulfilled" };
    assert.deepEqual(dueActions([broken], 10n ** 12n, 0n), { finalize: [], refund: [] });
  });

  test("an empty set does nothing", () => {
    assert.deepEqual(dueActions([], 123n, 60n), { finalize: [], refund: [] });
  });
});

describe("keeper tracking (applyEvent)", () => {
  const requested = (id: bigint): KeeperEvent => ({ kind: "requested", request: request(id, 5000n) });
  const answered = (id: bigint, status: number): KeeperEvent => ({
    kind: "fulfilled",
    requestId: id,
    status,
    fulfillment: fulfillment(100n),
  });

  test("requested → Pending; Success or SuccessOffchain → Fulfilled; error statuses → dropped", () => {
    const m = new Map<bigint, TrackedRequest>();
    for (const id of [1n, 2n, 3n, 4n]) applyEvent(m, requested(id));
    assert.deepEqual(
      [...m.values()].map((t) => t.state),
      ["Pending", "Pending", "Pending", "Pending"],
    );
    applyEvent(m, answered(1n, 0));
    applyEvent(m, answered(2n, 1));
    applyEvent(m, answered(3n, 2));
    assert.equal(m.get(1n)!.state, "Fulfilled");
    assert.deepEqual(m.get(1n)!.fulfillment, fulfillment(100n));
    assert.equal(m.get(2n)!.state, "Fulfilled");
    assert.equal(m.has(3n), false, "Failed is final: nothing left to do");
    assert.equal(m.get(4n)!.state, "Pending");
  });

  test("a replayed request does not reset a fulfilled one; an unknown fulfilment is ignored", () => {
    const m = new Map<bigint, TrackedRequest>();
    applyEvent(m, requested(1n));
    applyEvent(m, answered(1n, 0));
    applyEvent(m, requested(1n));
    assert.equal(m.get(1n)!.state, "Fulfilled");
    applyEvent(m, answered(99n, 0));
    assert.equal(m.has(99n), false);
  });
});

describe("keeper and disputes", () => {
  const requested = (id: bigint): KeeperEvent => ({ kind: "requested", request: request(id, 5000n) });
  const answered = (id: bigint): KeeperEvent => ({
    kind: "fulfilled",
    requestId: id,
    status: 0,
    fulfillment: fulfillment(100n),
  });

  test("recheck: Challenged holds a due finalisation, Overturned and the rest are done", () => {
    const [PENDING, FULFILLED, FAILED, REFUNDED, FINALIZED, CHALLENGED, OVERTURNED] = [1, 2, 3, 4, 5, 6, 7];
    assert.equal(recheck("finalize", FULFILLED), "act");
    assert.equal(recheck("finalize", CHALLENGED), "hold", "not now: the dispute decides");
    for (const s of [PENDING, FAILED, REFUNDED, FINALIZED, OVERTURNED, 0])
      assert.equal(recheck("finalize", s), "done", `state ${s}`);
    assert.equal(recheck("refund", PENDING), "act");
    for (const s of [FULFILLED, FAILED, REFUNDED, FINALIZED, CHALLENGED, OVERTURNED])
      assert.equal(recheck("refund", s), "done", `state ${s}`);
  });

  test("a challenge holds a result; a cleared one is due again, an overturned one is dropped", () => {
    const m = new Map<bigint, TrackedRequest>();
    for (const id of [1n, 2n]) {
      applyEvent(m, requested(id));
      applyEvent(m, answered(id));
      applyEvent(m, { kind: "challenged", requestId: id });
    }
    assert.equal(m.get(1n)!.state, "Challenged");
    assert.deepEqual(dueActions(m.values(), 10n ** 9n, 60n), { finalize: [], refund: [] });
    applyEvent(m, { kind: "cleared", requestId: 1n });
    applyEvent(m, { kind: "overturned", requestId: 2n });
    assert.equal(m.get(1n)!.state, "Fulfilled");
    assert.deepEqual(m.get(1n)!.fulfillment, fulfillment(100n), "the fulfilment survives the dispute");
    assert.equal(m.has(2n), false);
    assert.deepEqual(ids(dueActions(m.values(), 10n ** 9n, 60n).finalize), [1n]);
    // A challenge of a request that was never answered (never seen answered) changes nothing.
    applyEvent(m, requested(3n));
    applyEvent(m, { kind: "challenged", requestId: 3n });
    assert.equal(m.get(3n)!.state, "Pending");
  });
});

describe("keeper helpers", () => {
  test("chunks of at most n", () => {
    assert.deepEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
    assert.deepEqual(chunks([], 32), []);
    assert.equal(
      chunks(
        Array.from({ length: 65 }, (_, i) => i),
        32,
      ).length,
      3,
    );
    assert.throws(() => chunks([1], 0), RangeError);
  });

  test("the checkpoint key names chain and hub (lowercased)", () => {
    assert.equal(
      keeperCheckpointKey(31337, "0x000000000000000000000000000000000000ABcD"),
      "gradnet:keeper:31337:0x000000000000000000000000000000000000abcd:checkpoint",
    );
  });
});

describe("keeper config", () => {
  test("no KEEPER_PRIVATE_KEY: no keeper (and no keeper key in the config)", () => {
    const c = parseConfig({});
    assert.equal(c.keeper, undefined);
    assert.equal("keeper" in c, false);
    assert.equal(parseConfig({ KEEPER_PRIVATE_KEY: "  " }).keeper, undefined, "blank counts as unset");
    assert.equal(parseConfig({ KEEPER_INTERVAL_MS: "200" }).keeper, undefined);
  });

  test("a key enables the keeper, with the default interval of 1000 ms", () => {
    assert.deepEqual(parseConfig({ KEEPER_PRIVATE_KEY: ` ${KEY} ` }).keeper, {
      privateKey: KEY,
      intervalMs: 1000,
    });
    assert.deepEqual(parseConfig({ KEEPER_PRIVATE_KEY: KEY, KEEPER_INTERVAL_MS: "500" }).keeper, {
      privateKey: KEY,
      intervalMs: 500,
    });
  });

  test("a malformed key is rejected without echoing it", () => {
    for (const bad of [
      "ab".repeat(32),
      `0x${"ab".repeat(31)}`,
      `0x${"zz".repeat(32)}`,
      `0x${"ab".repeat(33)}`,
    ]) {
      assert.throws(
        () => parseConfig({ KEEPER_PRIVATE_KEY: bad }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.field, "KEEPER_PRIVATE_KEY");
          assert.match(err.message, /0x followed by 64 hex digits/);
          assert.equal(err.message.includes(bad), false, "the secret is not in the message");
          return true;
        },
      );
    }
  });

  test("a malformed interval is rejected with the field named", () => {
    for (const bad of ["fast", "-1", "1.5", "5", "3600001"]) {
      assert.throws(
        () => parseConfig({ KEEPER_PRIVATE_KEY: KEY, KEEPER_INTERVAL_MS: bad }),
        (err: unknown) => err instanceof ConfigError && err.field === "KEEPER_INTERVAL_MS",
        bad,
      );
    }
  });
});

/** A fake chain: blocks 0..head, the hub's states, a log of the transactions sent. */
function fakeChain(events: KeeperEvent[], now: bigint) {
  const states = new Map<bigint, number>();
  for (const e of events)
    states.set(e.kind === "requested" ? e.request.requestId : e.requestId, e.kind === "requested" ? 1 : 2);
  const sent: string[] = [];
  const failures: Error[] = [];
  const wrongState = (id: bigint) =>
    new ContractFunctionRevertedError({
      abi: inferenceHubAbi,
      data: encodeErrorResult({ abi: inferenceHubAbi, errorName: "Hub__WrongState", args: [id, 5] }),
      functionName: "finalizeBatch",
    });
  const chain: KeeperChain = {
    hub: "0x00000000000000000000000000000000000000c3",
    keeper: "0x00000000000000000000000000000000000000d4",
    getBlockNumber: async () => 10n,
    getLatestTimestamp: async () => now,
    getEvents: async (from) => (from === 0n ? events : []),
    getChallengeWindow: async () => 60n,
    getRequestState: async (id) => states.get(id) ?? 0,
    async finalizeBatch(requests) {
      const failure = failures.shift();
      if (failure !== undefined) throw failure;
      for (const r of requests) {
        if (states.get(r.requestId) !== 2) throw wrongState(r.requestId);
      }
      for (const r of requests) states.set(r.requestId, 5);
      sent.push(`finalize ${requests.map((r) => r.requestId).join(",")}`);
      return "0x01";
    },
    async refundExpired(r) {
      if (states.get(r.requestId) !== 1) throw wrongState(r.requestId);
      states.set(r.requestId, 4);
      sent.push(`refund ${r.requestId}`);
      return "0x02";
    },
    async finalizeRedundant(r) {
      if (states.get(r.requestId) !== 2) throw wrongState(r.requestId);
      states.set(r.requestId, 5);
      sent.push(`finalizeRedundant ${r.requestId}`);
      return "0x03";
    },
  };
  return { chain, states, sent, failures };
}

const silent = { info() {}, warn() {}, error() {}, debug() {} };

describe("redundant requests", () => {
  test("answerers split into the agreeing (paid) and the dissenting (slashed)", () => {
    const a = "0x00000000000000000000000000000000000000a1" as Address;
    const b = "0x00000000000000000000000000000000000000a2" as Address;
    const c = "0x00000000000000000000000000000000000000a3" as Address;
    const other = `0x${"cd".repeat(32)}` as Hex;
    assert.deepEqual(
      splitAnswers(
        [
          { node: a, key: KEY },
          { node: b, key: other },
          { node: c, key: KEY },
        ],
        KEY,
      ),
      { agreeing: [a, c], dissenting: [b] },
    );
  });

  test("the keeper settles a redundant request on its own, never in a finalizeBatch", async () => {
    const r = { ...request(7n, 5000n), redundancy: 3 };
    const events: KeeperEvent[] = [
      { kind: "requested", request: r },
      { kind: "fulfilled", requestId: 7n, status: 0, fulfillment: fulfillment(100n) },
      { kind: "requested", request: request(8n, 5000n) },
      { kind: "fulfilled", requestId: 8n, status: 0, fulfillment: fulfillment(100n) },
    ];
    const fake = fakeChain(events, 1000n);
    const k = new Keeper({
      chain: fake.chain,
      startBlock: 0n,
      confirmations: 0,
      logChunkBlocks: 100,
      intervalMs: 10,
      logger: silent,
    });
    await k.tick();
    assert.deepEqual(fake.sent.sort(), ["finalize 8", "finalizeRedundant 7"]);
    assert.equal(k.stats().finalized, 2);
  });
});

describe("Keeper against a fake chain", () => {
  const requested = (id: bigint, deadline: bigint): KeeperEvent => ({
    kind: "requested",
    request: request(id, deadline),
  });
  const answered = (id: bigint, at: bigint): KeeperEvent => ({
    kind: "fulfilled",
    requestId: id,
    status: 0,
    fulfillment: fulfillment(at),
  });
  const keeperOn = (chain: KeeperChain) =>
    new Keeper({
      chain,
      startBlock: 0n,
      confirmations: 0,
      logChunkBlocks: 100,
      intervalMs: 10,
      logger: silent,
    });

  test("finalises due requests in batches of 32 and refunds expired ones, once", async () => {
    const events: KeeperEvent[] = [];
    for (let i = 1n; i <= 40n; i++) events.push(requested(i, 5000n), answered(i, 100n));
    events.push(requested(41n, 150n), requested(42n, 5000n));
    const fake = fakeChain(events, 1000n);
    const k = keeperOn(fake.chain);
    await k.tick();
    assert.equal(fake.sent.length, 3);
    assert.match(fake.sent[0]!, /^finalize 1,2,.*,32$/);
    assert.equal(fake.sent[1], "finalize 33,34,35,36,37,38,39,40");
    assert.equal(fake.sent[2], "refund 41");
    await k.tick();
    assert.equal(fake.sent.length, 3, "nothing twice");
    const stats = k.stats();
    assert.equal(stats.finalized, 40);
    assert.equal(stats.refunded, 1);
    assert.equal(stats.tracked, 1, "42 is still pending before its deadline");
    assert.equal(stats.errors, 0);
  });

  test("a request settled by someone else is dropped, the rest of its batch goes through", async () => {
    const fake = fakeChain(
      [requested(1n, 5000n), answered(1n, 100n), requested(2n, 5000n), answered(2n, 100n)],
      1000n,
    );
    const k = keeperOn(fake.chain);
    // 2 is finalised by another party between the state check and our transaction
    const original = fake.chain.getRequestState;
    fake.chain.getRequestState = async (id) => {
      const s = await original(id);
      if (id === 2n) fake.states.set(2n, 5);
      return s;
    };
    await k.tick();
    assert.deepEqual(fake.sent, ["finalize 1"]);
    assert.equal(k.stats().settledByOthers, 1);
    assert.equal(k.stats().errors, 0);
    assert.equal(k.stats().tracked, 0);
  });

  test("other errors are counted, the request kept, and retried on the next loop", async () => {
    const fake = fakeChain([requested(1n, 5000n), answered(1n, 100n)], 1000n);
    fake.failures.push(new Error("nonce too low"));
    const k = keeperOn(fake.chain);
    await assert.rejects(k.tick());
    assert.equal(k.stats().errors, 1);
    assert.equal(k.stats().tracked, 1);
    await k.tick();
    assert.deepEqual(fake.sent, ["finalize 1"]);
    assert.equal(k.stats().finalized, 1);
  });

  test("the loop never throws; stop() ends it", async () => {
    const fake = fakeChain([requested(1n, 5000n), answered(1n, 100n)], 1000n);
    fake.chain.getBlockNumber = async () => {
      throw new Error("rpc down");
    };
    const k = keeperOn(fake.chain);
    k.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(k.stats().running, true);
    assert.ok(k.stats().errors >= 1);
    assert.equal(k.stats().lastError, "rpc down");
    await k.stop();
    assert.equal(k.stats().running, false);
  });
});

describe("Keeper and a disputed result", () => {
  /** A chain whose events arrive block by block; the test moves the head. */
  function growingChain() {
    const blocks: KeeperEvent[][] = [];
    const states = new Map<bigint, number>();
    const sent: string[] = [];
    let head = 0n;
    const chain: KeeperChain = {
      hub: "0x00000000000000000000000000000000000000c3",
      keeper: "0x00000000000000000000000000000000000000d4",
      getBlockNumber: async () => head,
      getLatestTimestamp: async () => 1000n,
      getEvents: async (from, to) => blocks.slice(Number(from), Number(to) + 1).flat(),
      getChallengeWindow: async () => 60n,
      getRequestState: async (id) => states.get(id) ?? 0,
      async finalizeBatch(requests) {
        for (const r of requests) {
          const state = states.get(r.requestId) ?? 0;
          if (state !== 2)
            throw new ContractFunctionRevertedError({
              abi: inferenceHubAbi,
              data: encodeErrorResult({
                abi: inferenceHubAbi,
                errorName: "Hub__WrongState",
                args: [r.requestId, state],
              }),
              functionName: "finalizeBatch",
            });
        }
        for (const r of requests) states.set(r.requestId, 5);
        sent.push(`finalize ${requests.map((r) => r.requestId).join(",")}`);
        return "0x01";
      },
      refundExpired: async () => "0x02",
      finalizeRedundant: async () => {
        throw new Error("no redundant request in this test");
      },
    };
    const mine = (...events: KeeperEvent[]) => {
      head += 1n;
      blocks[Number(head)] = events;
    };
    return { chain, states, sent, mine };
  }
  const requested = (id: bigint): KeeperEvent => ({ kind: "requested", request: request(id, 5000n) });
  const answered = (id: bigint): KeeperEvent => ({
    kind: "fulfilled",
    requestId: id,
    status: 0,
    fulfillment: fulfillment(100n),
  });

  test("a challenged result is held, not dropped, and finalised once the dispute clears it", async () => {
    const c = growingChain();
    c.mine(requested(1n), answered(1n), requested(2n), answered(2n));
    c.states.set(1n, 6); // challenged on chain before the keeper has seen the event
    c.states.set(2n, 2);
    const k = new Keeper({
      chain: c.chain,
      startBlock: 0n,
      confirmations: 0,
      logChunkBlocks: 100,
      intervalMs: 10,
      logger: silent,
    });
    await k.tick();
    assert.deepEqual(c.sent, ["finalize 2"]);
    assert.equal(k.stats().held, 1);
    assert.equal(k.stats().tracked, 1, "the challenged request is still tracked");
    assert.equal(k.stats().settledByOthers, 0);

    c.mine({ kind: "challenged", requestId: 1n });
    await k.tick();
    assert.deepEqual(c.sent, ["finalize 2"], "nothing is sent while the dispute runs");
    assert.equal(k.stats().held, 1, "held once");

    c.states.set(1n, 2);
    c.mine({ kind: "cleared", requestId: 1n });
    await k.tick();
    assert.deepEqual(c.sent, ["finalize 2", "finalize 1"]);
    assert.equal(k.stats().tracked, 0);
    assert.equal(k.stats().errors, 0);
  });

  test("a result challenged between the state check and the batch is held; an overturned one is done", async () => {
    const c = growingChain();
    c.mine(requested(1n), answered(1n), requested(2n), answered(2n), requested(3n), answered(3n));
    for (const id of [1n, 2n, 3n]) c.states.set(id, 2);
    const original = c.chain.getRequestState;
    c.chain.getRequestState = async (id) => {
      const s = await original(id);
      if (id === 3n) c.states.set(3n, 6); // a verifier's challenge lands after our check
      return s;
    };
    const k = new Keeper({
      chain: c.chain,
      startBlock: 0n,
      confirmations: 0,
      logChunkBlocks: 100,
      intervalMs: 10,
      logger: silent,
    });
    await k.tick();
    assert.deepEqual(c.sent, ["finalize 1,2"]);
    assert.equal(k.stats().held, 1);
    assert.equal(k.stats().tracked, 1);

    c.chain.getRequestState = original;
    c.states.set(3n, 7);
    c.mine({ kind: "overturned", requestId: 3n });
    await k.tick();
    assert.equal(k.stats().tracked, 0, "overturned: the fee went back to the requester");
    assert.deepEqual(c.sent, ["finalize 1,2"]);
    assert.equal(k.stats().errors, 0);
  });
});
