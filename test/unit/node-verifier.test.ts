import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import {
  ContractFunctionRevertedError,
  encodeErrorResult,
  keccak256,
  sha256,
  stringToHex,
  type Address,
  type Hex,
} from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { ConfigError, parseConfig } from "../../node/config";
import { startVerifier } from "../../node/main";
import {
  Verifier,
  challengeWindowOpen,
  checkpointAfter,
  classifyStatus,
  disputeActions,
  isSampled,
  samplingSecret,
  verifierCheckpointKey,
  workerAnswerSource,
  type AnswerSource,
  type DisputeView,
  type FulfilledEvent,
  type OpenedEvent,
  type Recomputed,
  type VerifierChain,
} from "../../node/verifier";
import {
  SESSION_OPTIONS,
  corruptOutput,
  localSession,
  prepareInputs,
  runOne,
  type ModelSpec,
} from "../../inference-worker";
import {
  ResultStatus,
  decodeWire,
  encodeTensors,
  settlementAbi,
  type Request,
  type RequestedLog,
} from "../../sdk";
import manifest from "../../models/manifest.json";

const KEYS = [`0x${"a1".repeat(32)}`, `0x${"b2".repeat(32)}`, `0x${"c3".repeat(32)}`] as Hex[];
const [V1, V2, V3] = KEYS.map((k) => privateKeyToAddress(k)) as [Address, Address, Address];
const HUB = "0x0000000000000000000000000000000000000F10" as Address;
const NODE = "0x00000000000000000000000000000000000000a1" as Address;
const OTHER = "0x00000000000000000000000000000000000000e5" as Address;
const RIGHT = keccak256(stringToHex("the honest output"));
const WRONG = keccak256(stringToHex("a lie"));

function request(id: bigint): Request {
  return {
    requestId: id,
    modelId: `0x${"11".repeat(32)}`,
    requester: "0x00000000000000000000000000000000000000b2",
    callbackGasLimit: 0,
    deadline: 10_000n,
    fee: 1000n,
    inputHash: `0x${"22".repeat(32)}`,
    inputIsRef: false,
    redundancy: 1,
  };
}

describe("verifier decisions", () => {
  test("only Success results are re-executed", () => {
    assert.equal(classifyStatus(ResultStatus.Success), "verify");
    assert.equal(classifyStatus(ResultStatus.SuccessOffchain), "offchain");
    for (const s of [ResultStatus.InvalidInput, ResultStatus.InputUnavailable, ResultStatus.ModelFailed])
      assert.equal(classifyStatus(s), "errorStatus");
  });

  test("sampling: all at 1, none at 0, about the share in between, fixed per key and request", () => {
    const secret = samplingSecret(KEYS[0]!);
    const ids = Array.from({ length: 4000 }, (_, i) => BigInt(i + 1));
    assert.ok(ids.every((id) => isSampled(secret, id, 1)));
    assert.ok(ids.every((id) => !isSampled(secret, id, 0)));
    const picked = ids.filter((id) => isSampled(secret, id, 0.25));
    assert.ok(picked.length > 850 && picked.length < 1150, `${picked.length} of 4000 at 0.25`);
    assert.deepEqual(
      ids.filter((id) => isSampled(secret, id, 0.25)),
      picked,
      "deterministic",
    );
    // A larger share keeps every request a smaller one picked (same draw, higher threshold).
    assert.ok(picked.every((id) => isSampled(secret, id, 0.5)));
    // Another key draws another sample: a worker that knows the verifiers' addresses cannot
    // compute it, since the secret comes from the private key.
    const other = ids.filter((id) => isSampled(samplingSecret(KEYS[1]!), id, 0.25));
    assert.notDeepEqual(other, picked);
    assert.notEqual(samplingSecret(KEYS[0]!), samplingSecret(KEYS[1]!));
    assert.throws(() => isSampled(secret, 1n, 1.5), RangeError);
    assert.throws(() => isSampled(secret, 1n, Number.NaN), RangeError);
  });

  test("the challenge window is open strictly before fulfilledAt + window", () => {
    assert.equal(challengeWindowOpen(1000n, 60n, 1059n), true);
    assert.equal(challengeWindowOpen(1000n, 60n, 1060n), false);
    assert.equal(challengeWindowOpen(1000n, 0n, 1000n), false);
  });

  const dispute = (over: Partial<DisputeView> = {}): DisputeView => ({
    source: HUB,
    openedAt: 1000n,
    drawBlock: 11n,
    challenger: V1,
    votingEndsAt: 1060n,
    accused: NODE,
    bond: 10n,
    subjectId: 1n,
    accusedHash: WRONG,
    claimedHash: RIGHT,
    majorityHash: `0x${"00".repeat(32)}`,
    verdict: 0,
    votesCast: 0,
    committee: [],
    ...over,
  });
  const ctx = (over: Partial<Parameters<typeof disputeActions>[1]> = {}) => ({
    head: 12n,
    now: 1010n,
    ours: [V1, V2] as Address[],
    voted: [] as Address[],
    ...over,
  });

  test("disputes: draw after the draw block, while voting is open", () => {
    assert.deepEqual(disputeActions(dispute(), ctx({ head: 11n })), [], "not before the draw block");
    assert.deepEqual(disputeActions(dispute(), ctx({ head: 12n })), [{ kind: "draw" }]);
    assert.deepEqual(
      disputeActions(dispute(), ctx({ now: 1061n })),
      [{ kind: "resolve" }],
      "nobody drew before voting closed: resolving ends it without a majority",
    );
  });

  test("disputes: each of our identities on the committee votes once; others' seats are theirs", () => {
    const d = dispute({ committee: [V2, OTHER, V1] });
    assert.deepEqual(disputeActions(d, ctx()), [
      { kind: "vote", voter: V1 },
      { kind: "vote", voter: V2 },
    ]);
    assert.deepEqual(disputeActions(d, ctx({ voted: [V1] })), [{ kind: "vote", voter: V2 }]);
    assert.deepEqual(
      disputeActions(dispute({ committee: [V2.toLowerCase() as Address] }), ctx()),
      [{ kind: "vote", voter: V2 }],
      "addresses compare case-insensitively",
    );
    assert.deepEqual(disputeActions(dispute({ committee: [OTHER, V3] }), ctx()), [], "not on the committee");
  });

  test("disputes: resolve once every member voted, or once voting closed", () => {
    const committee = [V1, V2, OTHER];
    assert.deepEqual(
      disputeActions(dispute({ committee, votesCast: 2 }), ctx({ voted: [V1, V2] })),
      [],
      "a member has yet to vote",
    );
    assert.deepEqual(disputeActions(dispute({ committee, votesCast: 3 }), ctx({ voted: [V1, V2] })), [
      { kind: "resolve" },
    ]);
    assert.deepEqual(
      disputeActions(dispute({ committee, votesCast: 2 }), ctx({ voted: [V1, V2], now: 1061n })),
      [{ kind: "resolve" }],
    );
    assert.deepEqual(
      disputeActions(dispute({ committee, votesCast: 0 }), ctx({ now: 1061n })),
      [{ kind: "resolve" }],
      "too late to vote: resolve",
    );
    assert.deepEqual(
      disputeActions(dispute({ committee, votesCast: 1 }), ctx({ now: 1060n })),
      [
        { kind: "vote", voter: V1 },
        { kind: "vote", voter: V2 },
      ],
      "voting is open up to and including votingEndsAt",
    );
    assert.deepEqual(disputeActions(dispute({ committee, votesCast: 3, verdict: 2 }), ctx()), [], "ended");
  });

  test("the checkpoint stays before the oldest result still waiting", () => {
    assert.equal(checkpointAfter(100n, []), 100n);
    assert.equal(checkpointAfter(100n, [90n, 40n, 95n]), 39n);
    assert.equal(checkpointAfter(30n, [90n]), 30n);
  });

  test("the checkpoint key names chain, hub, namespace and verifier (addresses lowercased)", () => {
    assert.equal(
      verifierCheckpointKey(
        31337,
        "0x000000000000000000000000000000000000ABcD",
        "gradnet-inference",
        "0x00000000000000000000000000000000000000Ef",
      ),
      "gradnet:verifier:31337:0x000000000000000000000000000000000000abcd:gradnet-inference:" +
        "0x00000000000000000000000000000000000000ef:checkpoint",
    );
  });
});

describe("verifier config", () => {
  test("no VERIFIER_PRIVATE_KEYS: no verifier", () => {
    assert.equal("verifier" in parseConfig({}), false);
    assert.equal(parseConfig({ VERIFIER_PRIVATE_KEYS: " ", VERIFY_SHARE: "0.5" }).verifier, undefined);
  });

  test("keys, share, interval and cache dir, with defaults", () => {
    assert.deepEqual(parseConfig({ VERIFIER_PRIVATE_KEYS: ` ${KEYS[0]} , ${KEYS[1]}` }, "/srv").verifier, {
      privateKeys: [KEYS[0], KEYS[1]],
      share: 1,
      intervalMs: 500,
      modelCacheDir: path.join("/srv", ".gradnet", "verifier-models"),
    });
    const c = parseConfig(
      {
        VERIFIER_PRIVATE_KEYS: KEYS[2],
        VERIFY_SHARE: "0.05",
        VERIFIER_INTERVAL_MS: "250",
        VERIFIER_MODEL_CACHE_DIR: "cache",
      },
      "/srv",
    ).verifier;
    assert.deepEqual(c, {
      privateKeys: [KEYS[2]],
      share: 0.05,
      intervalMs: 250,
      modelCacheDir: "/srv/cache",
    });
    assert.equal(parseConfig({ VERIFIER_PRIVATE_KEYS: KEYS[0], VERIFY_SHARE: "0" }).verifier!.share, 0);
  });

  test("startVerifier refuses to start without keys, naming the variable", async () => {
    await assert.rejects(
      startVerifier(parseConfig({})),
      (err: unknown) => err instanceof ConfigError && err.field === "VERIFIER_PRIVATE_KEYS",
    );
  });

  test("bad values are refused with the field named, and keys are never echoed", () => {
    const bad: [string, string][] = [
      ["VERIFIER_PRIVATE_KEYS", `${KEYS[0]},0x1234`],
      ["VERIFIER_PRIVATE_KEYS", `${KEYS[0]},`],
      ["VERIFIER_PRIVATE_KEYS", `${KEYS[0]},${KEYS[0]!.toUpperCase().replace("0X", "0x")}`],
      ["VERIFY_SHARE", "1.5"],
      ["VERIFY_SHARE", "-0.1"],
      ["VERIFY_SHARE", "half"],
      ["VERIFIER_INTERVAL_MS", "5"],
    ];
    for (const [field, value] of bad) {
      assert.throws(
        () => parseConfig({ VERIFIER_PRIVATE_KEYS: KEYS[1], [field]: value }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, `${field}=${value}`);
          assert.equal(err.field, field);
          assert.equal(err.message.includes(KEYS[0]!.slice(2)), false, "no key in the message");
          return true;
        },
      );
    }
  });
});

// ---------------------------------------------------------------------------- a fake chain

function revert(errorName: string, args: readonly unknown[]) {
  return new ContractFunctionRevertedError({
    abi: settlementAbi,
    data: encodeErrorResult({ abi: settlementAbi, errorName, args } as never),
    functionName: "challenge",
  });
}

/**
 * A settlement in miniature: fulfilments and disputes per block, the contract's rules for
 * challenge, draw, vote and resolve (committee = every registered verifier), a log of what was sent.
 */
function fakeChain(verifiers: Address[]) {
  let head = 0n;
  let now = 1000n;
  const fulfilled: (FulfilledEvent & { block: bigint })[] = [];
  const opened: OpenedEvent[] = [];
  const requests = new Map<bigint, RequestedLog>();
  const disputes = new Map<bigint, DisputeView & { votes: Map<string, Hex> }>();
  const byRequest = new Map<bigint, bigint>();
  const active = new Set(verifiers.map((v) => v.toLowerCase()));
  const registered = [...verifiers];
  const sent: string[] = [];
  const failures: Error[] = [];
  const window = 60n;

  const chain: VerifierChain = {
    hub: HUB,
    verifiers,
    getBlockNumber: async () => head,
    getLatest: async () => ({ number: head, timestamp: now }),
    getChallengeWindow: async () => window,
    getFulfilled: async (from, to) => fulfilled.filter((e) => e.block >= from && e.block <= to),
    getOpened: async (from, to) => opened.filter((e) => e.blockNumber >= from && e.blockNumber <= to),
    findRequest: async (id) => requests.get(id),
    findFulfillment: async (id) => fulfilled.find((e) => e.requestId === id)?.fulfillment,
    async getDispute(id) {
      const d = disputes.get(id);
      if (d === undefined) throw new Error(`no dispute ${id}`);
      return { ...d, committee: [...d.committee] };
    },
    hasVoted: async (id, voter) => disputes.get(id)!.votes.has(voter.toLowerCase()),
    async challenge(from, req, f, claimed) {
      const failure = failures.shift();
      if (failure !== undefined) throw failure;
      const existing = byRequest.get(req.requestId);
      if (existing !== undefined) throw revert("Settlement__AlreadyChallenged", [req.requestId, existing]);
      if (now >= f.fulfilledAt + window)
        throw revert("Settlement__ChallengeWindowClosed", [req.requestId, f.fulfilledAt + window]);
      if (!active.has(from.toLowerCase())) throw revert("Settlement__NotVerifier", [from]);
      head += 1n;
      const id = BigInt(disputes.size + 1);
      disputes.set(id, {
        source: HUB,
        openedAt: now,
        drawBlock: head + 1n,
        challenger: from,
        votingEndsAt: now + 60n,
        accused: f.node,
        bond: 10n,
        subjectId: req.requestId,
        accusedHash: f.outputHash,
        claimedHash: claimed,
        majorityHash: `0x${"00".repeat(32)}`,
        verdict: 0,
        votesCast: 0,
        committee: [],
        votes: new Map(),
      });
      byRequest.set(req.requestId, id);
      opened.push({
        disputeId: id,
        source: HUB,
        subjectId: req.requestId,
        challenger: from,
        accused: f.node,
        blockNumber: head,
      });
      sent.push(`challenge ${req.requestId} by ${from} claiming ${claimed === RIGHT ? "RIGHT" : claimed}`);
      return { tx: "0x01", disputeId: id };
    },
    async drawCommittee(from, id) {
      const d = disputes.get(id)!;
      if (d.committee.length > 0) throw revert("Settlement__CommitteeAlreadyDrawn", [id]);
      if (head <= d.drawBlock) throw revert("Settlement__CommitteeNotDrawable", [id, d.drawBlock]);
      d.committee = registered.filter((v) => v.toLowerCase() !== d.accused.toLowerCase());
      head += 1n;
      sent.push(`draw ${id}`);
      return "0x02";
    },
    async vote(from, id, hash) {
      const d = disputes.get(id)!;
      if (d.votes.has(from.toLowerCase())) throw revert("Settlement__AlreadyVoted", [id, from]);
      d.votes.set(from.toLowerCase(), hash);
      d.votesCast += 1;
      head += 1n;
      sent.push(`vote ${id} by ${from} for ${hash === RIGHT ? "RIGHT" : hash === WRONG ? "WRONG" : hash}`);
      return "0x03";
    },
    async resolveChallenge(from, req) {
      const id = byRequest.get(req.requestId)!;
      const d = disputes.get(id)!;
      if (d.verdict !== 0) throw revert("Settlement__DisputeEnded", [id, d.verdict]);
      if (now <= d.votingEndsAt && (d.committee.length === 0 || d.votesCast < d.committee.length))
        throw revert("Settlement__VotingOpen", [id, d.votingEndsAt]);
      d.verdict = [...d.votes.values()].filter((h) => h === d.claimedHash).length * 2 > d.votesCast ? 2 : 1;
      head += 1n;
      sent.push(`resolve ${id}`);
      return { tx: "0x04", verdict: d.verdict };
    },
  };

  return {
    chain,
    sent,
    failures,
    active,
    registered,
    disputes,
    /** A request answered with `outputHash` in a new block, at the current time. */
    answer(id: bigint, outputHash: Hex, status: number = ResultStatus.Success) {
      head += 1n;
      requests.set(id, {
        request: request(id),
        input: "0x00",
        blockNumber: head,
        txHash: "0x05",
        logIndex: 0,
      });
      fulfilled.push({
        requestId: id,
        status,
        fulfillment: { node: NODE, outputHash, fulfilledAt: now },
        blockNumber: head,
        block: head,
      });
    },
    /** A dispute opened by someone else. */
    challengeByOther(id: bigint, challenger: Address) {
      const f = fulfilled.find((e) => e.requestId === id)!.fulfillment;
      active.add(challenger.toLowerCase());
      registered.push(challenger);
      return chain.challenge(challenger, request(id), f, RIGHT);
    },
    mine(blocks = 1n) {
      head += blocks;
    },
    advance(seconds: bigint) {
      now += seconds;
    },
  };
}

/** Answers RIGHT for every request, counting re-executions. */
function honestAnswers(over: (id: bigint) => Recomputed | undefined = () => undefined) {
  const computed: bigint[] = [];
  const source: AnswerSource = {
    async compute(req) {
      computed.push(req.requestId);
      return over(req.requestId) ?? { outputHash: RIGHT };
    },
  };
  return { source, computed };
}

const silent = { info() {}, warn() {}, error() {}, debug() {} };

function memoryCheckpoints() {
  const writes: bigint[] = [];
  let value: bigint | undefined;
  return {
    writes,
    store: {
      get: async () => value,
      set: async (b: bigint) => {
        value = b;
        writes.push(b);
      },
    },
  };
}

function verifierOn(chain: VerifierChain, answers: AnswerSource, over: { share?: number } = {}) {
  const cp = memoryCheckpoints();
  const v = new Verifier({
    chain,
    answers,
    share: over.share ?? 1,
    samplingSecret: samplingSecret(KEYS[0]!),
    startBlock: 0n,
    confirmations: 0,
    logChunkBlocks: 5,
    intervalMs: 10,
    checkpoints: cp.store,
    logger: silent,
  });
  return { v, cp };
}

describe("Verifier against a fake settlement", () => {
  test("an honest result is verified and left alone", async () => {
    const fake = fakeChain([V1, V2, V3]);
    const { source, computed } = honestAnswers();
    const { v } = verifierOn(fake.chain, source);
    fake.answer(1n, RIGHT);
    await v.tick();
    assert.deepEqual(computed, [1n]);
    assert.deepEqual(fake.sent, []);
    const s = v.stats();
    assert.equal(s.checked, 1);
    assert.equal(s.matches, 1);
    assert.equal(s.waiting, 0);
    await v.tick();
    assert.deepEqual(computed, [1n], "checked once");
  });

  test("a wrong result is challenged, then the committee votes and the dispute is resolved", async () => {
    const fake = fakeChain([V1, V2, V3]);
    const { source, computed } = honestAnswers();
    const { v } = verifierOn(fake.chain, source);
    fake.answer(1n, WRONG);
    await v.tick();
    assert.deepEqual(fake.sent, [`challenge 1 by ${V1} claiming RIGHT`]);
    assert.equal(v.stats().mismatches, 1);
    assert.equal(v.stats().challenges, 1);
    await v.tick(); // the draw block has not passed yet
    assert.equal(fake.sent.length, 1);
    fake.mine();
    await v.tick();
    assert.equal(fake.sent.length, 1, "the draw block is the head: not yet");
    fake.mine();
    await v.tick();
    assert.deepEqual(fake.sent.slice(1), ["draw 1"]);
    await v.tick();
    assert.deepEqual(fake.sent.slice(2), [
      `vote 1 by ${V1} for RIGHT`,
      `vote 1 by ${V2} for RIGHT`,
      `vote 1 by ${V3} for RIGHT`,
    ]);
    await v.tick();
    assert.deepEqual(fake.sent.slice(5), ["resolve 1"]);
    assert.equal(fake.disputes.get(1n)!.verdict, 2);
    assert.deepEqual(computed, [1n], "the vote reuses the hash computed for the challenge");
    const s = v.stats();
    assert.equal(s.votes, 3);
    assert.equal(s.resolved, 1);
    assert.equal(s.openDisputes, 0);
    assert.equal(s.errors, 0);
    await v.tick();
    assert.equal(fake.sent.length, 6, "nothing more to do");
  });

  test("a key that is not an active verifier passes the challenge to the next one", async () => {
    const fake = fakeChain([V1, V2]);
    fake.active.delete(V1.toLowerCase());
    const { v } = verifierOn(fake.chain, honestAnswers().source);
    fake.answer(1n, WRONG);
    await v.tick();
    assert.deepEqual(fake.sent, [`challenge 1 by ${V2} claiming RIGHT`]);
  });

  test("a result someone else already challenged is not challenged again, but we still vote", async () => {
    const fake = fakeChain([V1]);
    const { v } = verifierOn(fake.chain, honestAnswers().source);
    fake.answer(1n, WRONG);
    await fake.challengeByOther(1n, OTHER);
    fake.mine(2n);
    await v.tick(); // our challenge: AlreadyChallenged; the dispute is followed and drawn
    assert.deepEqual(fake.sent.slice(1), ["draw 1"]);
    assert.equal(v.stats().challenges, 0);
    await v.tick();
    assert.deepEqual(fake.sent.slice(2), [`vote 1 by ${V1} for RIGHT`]);
    await v.tick();
    assert.deepEqual(fake.sent.slice(3), [], "OTHER has not voted and voting is open: no resolve yet");
    fake.advance(61n);
    await v.tick();
    assert.deepEqual(fake.sent.slice(3), ["resolve 1"]);
  });

  test("results whose window closed, error answers, off-chain answers and unsampled ones are not re-executed", async () => {
    const fake = fakeChain([V1]);
    const { source, computed } = honestAnswers();
    fake.answer(1n, WRONG);
    fake.advance(60n);
    fake.answer(2n, WRONG, ResultStatus.InvalidInput);
    fake.answer(3n, WRONG, ResultStatus.SuccessOffchain);
    const { v } = verifierOn(fake.chain, source);
    await v.tick();
    assert.deepEqual(computed, []);
    assert.deepEqual(fake.sent, []);

    const none = verifierOn(fake.chain, source, { share: 0 });
    fake.answer(4n, WRONG);
    await none.v.tick();
    assert.deepEqual(computed, [], "share 0 checks nothing");
  });

  test("an unverifiable result is reported, not challenged", async () => {
    const fake = fakeChain([V1]);
    const { v } = verifierOn(
      fake.chain,
      honestAnswers(() => ({ unverifiable: "an honest node answers InvalidInput: bad shape" })).source,
    );
    fake.answer(1n, WRONG);
    await v.tick();
    assert.deepEqual(fake.sent, []);
    assert.equal(v.stats().unverifiable, 1);
    assert.equal(v.stats().waiting, 0);
  });

  test("a failed re-execution or challenge is retried, and the checkpoint waits for it", async () => {
    const fake = fakeChain([V1]);
    let down = true;
    const { source, computed } = honestAnswers(() => {
      if (down) throw new Error("model store unreachable");
      return undefined;
    });
    const { v, cp } = verifierOn(fake.chain, source);
    fake.mine(3n);
    fake.answer(1n, WRONG); // block 4
    fake.mine(2n);
    await assert.rejects(v.tick());
    assert.equal(v.stats().errors, 1);
    assert.equal(v.stats().waiting, 1);
    assert.deepEqual(cp.writes, [3n], "the checkpoint stays before the result's block");
    down = false;
    fake.failures.push(new Error("nonce too low"));
    await assert.rejects(v.tick());
    assert.equal(v.stats().waiting, 1, "the challenge failed: still waiting");
    await v.tick();
    assert.deepEqual(fake.sent, [`challenge 1 by ${V1} claiming RIGHT`]);
    assert.equal(cp.writes.at(-1), 6n, "then it moves to the last block scanned");
    assert.deepEqual(computed, [1n, 1n], "the failed compute is not remembered; the good one is");
  });

  test("a restart resumes after its checkpoint", async () => {
    const fake = fakeChain([V1]);
    const { source, computed } = honestAnswers();
    const first = verifierOn(fake.chain, source);
    fake.answer(1n, RIGHT);
    await first.v.tick();
    const again = new Verifier({
      chain: fake.chain,
      answers: source,
      share: 1,
      samplingSecret: samplingSecret(KEYS[0]!),
      startBlock: 0n,
      confirmations: 0,
      logChunkBlocks: 5,
      intervalMs: 10,
      checkpoints: first.cp.store,
      logger: silent,
    });
    fake.answer(2n, RIGHT);
    await again.tick();
    assert.deepEqual(computed, [1n, 2n]);
  });

  test("the loop never throws; stop() ends it and closes the models", async () => {
    const fake = fakeChain([V1]);
    fake.chain.getBlockNumber = async () => {
      throw new Error("rpc down");
    };
    let closed = false;
    const { v } = verifierOn(fake.chain, {
      compute: async () => ({ outputHash: RIGHT }),
      close: async () => {
        closed = true;
      },
    });
    v.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(v.stats().running, true);
    assert.ok(v.stats().errors >= 1);
    assert.equal(v.stats().lastError, "rpc down");
    await v.stop();
    assert.equal(v.stats().running, false);
    assert.equal(closed, true);
  });
});

// ------------------------------------------------------- re-execution with the worker's code

const iris = manifest.models.find((m) => m.name === "iris-mlp")!;
const IRIS_SPEC: ModelSpec = {
  modelId: iris.sha256 as Hex,
  decimals: iris.decimals,
  inputs: iris.schema.inputs,
  outputs: iris.schema.outputs,
};
const IRIS_FILE = path.join(__dirname, "../../models/iris-mlp.onnx");

describe("workerAnswerSource", () => {
  test("re-executes with the worker's code: the honest hash, never a corrupted one", async () => {
    const session = localSession(await ort.InferenceSession.create(IRIS_FILE, SESSION_OPTIONS));
    const model = { spec: IRIS_SPEC, session };
    const source = workerAnswerSource({
      models: { get: async () => model, close: async () => undefined },
      maxInputBytes: 1 << 20,
    });
    const input = encodeTensors(
      [{ name: "input", dtype: "float32", shape: [1, 4], data: [6.7, 3.0, 5.2, 2.3] }],
      6,
    );
    const req = { ...request(1n), modelId: IRIS_SPEC.modelId, inputHash: sha256(input) };
    const honest = await runOne(session, IRIS_SPEC, prepareInputs(IRIS_SPEC, decodeWire(input)));
    assert.deepEqual(await source.compute(req, input, undefined), { outputHash: honest.outputHash });
    assert.notEqual(corruptOutput(honest.output).outputHash, honest.outputHash);

    // A by-reference input: fetched and checked against its commitment.
    const stored = Buffer.from(input.slice(2), "hex");
    const byRef = workerAnswerSource({
      models: { get: async () => model, close: async () => undefined },
      maxInputBytes: 1 << 20,
      fetchInput: async () => new Uint8Array(stored),
    });
    const refReq = { ...req, inputIsRef: true };
    assert.deepEqual(await byRef.compute(refReq, "0x", "http://store/input"), {
      outputHash: honest.outputHash,
    });
    const tampered = await byRef.compute(
      { ...refReq, inputHash: sha256("0x01") },
      "0x",
      "http://store/input",
    );
    assert.ok("unverifiable" in tampered && /not the committed/.test(tampered.unverifiable));

    // An input an honest node refuses cannot back a challenge.
    const bad = await source.compute(req, "0xdeadbeef", undefined);
    assert.ok("unverifiable" in bad && /InvalidInput/.test(bad.unverifiable));
  });
});
