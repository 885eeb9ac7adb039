/**
 * Property-based tests: fast-check drives the real contracts on the in-process Hardhat network
 * with random call sequences, keeps an off-chain model of every request, credit and stake, and
 * checks the money invariants after every single call. A call that must revert is sent anyway
 * (and mined), and must revert with the expected custom error and change nothing.
 *
 * How many sequences run:
 *   GRADNET_PROPERTY_RUNS=N    N sequences for each property
 *   GRADNET_PROPERTY_RUNS=x4   4 times the CI defaults (a fraction works too: x0.1)
 * A failure prints fast-check's seed and path; replay that exact sequence with
 *   GRADNET_PROPERTY_SEED=<seed> GRADNET_PROPERTY_PATH=<path> npx hardhat test test/contracts/properties.test.ts
 */
import { expect } from "chai";
import fc from "fast-check";
import hre from "hardhat";
import {
  concat,
  hexlify,
  keccak256,
  sha256,
  toBeHex,
  toUtf8Bytes,
  ZeroHash,
  type ContractTransactionReceipt,
  type ContractTransactionResponse,
  type Interface,
  type Signer,
} from "ethers";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { NodeRegistry, StoringConsumer } from "../../typechain-types";
import { DEVNET_PARAMS } from "../../deploy/config";
import {
  CALLBACK,
  deployFixture,
  encodeTensors,
  floatTensor,
  MODEL_FEE,
  MODEL_ID,
  ROLE,
  STATE,
  STATUS,
  type Fixture,
  type FulfillmentStruct,
  type RequestStruct,
} from "./helpers";
import {
  balanceOf,
  batchReaderRuntimeCode,
  choose,
  coder,
  command,
  commitmentSlot,
  configuredRuns,
  err,
  ev,
  fcParameters,
  feeSplit,
  fulfillmentHash,
  GAS,
  holds,
  installBatchReader,
  latestTimestamp,
  mineAt,
  newStats,
  observed,
  rarely,
  reached,
  readAll,
  report,
  requestHash,
  requestTuple,
  same,
  sendAt,
  sendNext,
  show,
  view,
  weighted,
  withdrawCredit,
  type Effect,
  type ExpectedError,
  type ModelClock,
  type Outcome,
} from "./propertyHarness";

// =============================================================================== configuration

/** Sequences per property in CI (together at least 1,000); each sequence is 5 to 20 calls. */
const CI_RUNS = { system: 600, nodes: 400 } as const;
const SEQUENCE = { minLength: 5, maxLength: 20 } as const;

const BPS = 10_000n;
const CHALLENGE_WINDOW = DEVNET_PARAMS.settlement.challengeWindow;
const REQUEST_TIMEOUT = DEVNET_PARAMS.hub.requestTimeout;
const MAX_CALLBACK_GAS = DEVNET_PARAMS.hub.maxCallbackGasLimit;
/** Enough for StoringConsumer to decode three values and store them. */
const CONSUMER_GAS_OK = 300_000;
/**
 * Too little for any callback of StoringConsumer: an SSTORE needs more than 2,300 gas left
 * (EIP-2200), and the callback always stores. (5,000 is not enough to be sure: the slots of a
 * second callback in the same batch are warm and already written.)
 */
const CONSUMER_GAS_STARVED = 2_000;
const MAX_UINT256 = (1n << 256n) - 1n;
const ETH = 10n ** 18n;

const stats = { system: newStats(), nodes: newStats() };
// ======================================================================== the inference system

interface SystemWorld extends Fixture {
  consumer: StoringConsumer;
}

/**
 * deployFixture (through its own snapshot, which the other test files share), plus a
 * StoringConsumer that requests through the hub and decodes answers in its callback.
 */
async function systemFixture(): Promise<SystemWorld> {
  const f = await loadFixture(deployFixture);
  const factory = await hre.ethers.getContractFactory("StoringConsumer", f.owner);
  const consumer = (await factory.deploy(f.addresses.inferenceHub)) as unknown as StoringConsumer;
  await consumer.waitForDeployment();
  await installBatchReader();
  return { ...f, consumer };
}

type Answer =
  | { type: "success"; values: [bigint, bigint, bigint] }
  | { type: "offchain"; uri: string; outputHash: bigint }
  | { type: "error"; status: number; reason: string };

type RequestField = "fee" | "requester" | "deadline" | "callbackGasLimit" | "inputHash" | "inputIsRef";
type FulfillmentField = "node" | "outputHash" | "fulfilledAt";

/**
 * `pick` selects a request (modulo the number of candidates), `payer`/`caller` one of user, other
 * and modelOwner, `node` node1 or node2. `anyRequest` lets a command pick a request in any state.
 */
type SysCmd =
  | {
      kind: "request";
      payer: number;
      fee: bigint;
      viaConsumer: boolean;
      gasChoice: number;
      eoaGas: number;
      input: [bigint, bigint, bigint, bigint];
    }
  | {
      kind: "requestInvalid";
      payer: number;
      viaConsumer: boolean;
      fault: "feeTooLow" | "gasTooHigh";
      x: bigint;
    }
  | { kind: "fulfill"; pick: number; anyRequest: boolean; node: number; answer: Answer }
  | {
      kind: "fulfillBatch";
      node: number;
      items: { pick: number; answer: Answer }[];
      badHashAt: number | null;
    }
  | { kind: "fulfillBadHash"; pick: number; node: number; answer: Answer }
  | { kind: "fulfillByStranger"; pick: number; caller: number; answer: Answer }
  | { kind: "fulfillAgain"; pick: number; node: number; answer: Answer }
  | { kind: "advance"; seconds: number }
  | { kind: "advanceToDeadline"; pick: number; offset: number }
  | { kind: "advanceToFinalizable"; pick: number; offset: number }
  | { kind: "refund"; pick: number; anyRequest: boolean; caller: number; wait: number }
  | { kind: "finalize"; pick: number; anyRequest: boolean; caller: number; wait: number }
  | { kind: "forged"; action: "fulfill" | "refund"; pick: number; node: number; field: RequestField }
  | { kind: "forgedFinalize"; pick: number; field: RequestField | FulfillmentField }
  | { kind: "withdraw"; who: number; anyAccount: boolean; to: number };

const smallInt = fc.bigInt({ min: -10_000_000n, max: 10_000_000n });
const int256 = fc.bigInt({ min: -(1n << 255n), max: (1n << 255n) - 1n });
const tensorValue = fc.oneof(weighted(3, smallInt), weighted(1, int256));
const pick = fc.nat({ max: 1_000 });
const callerIndex = fc.nat({ max: 2 });
const nodeIndex = fc.nat({ max: 1 });

const answerArb: fc.Arbitrary<Answer> = fc.oneof(
  weighted(
    5,
    fc.record({
      type: fc.constant("success" as const),
      values: fc.tuple(tensorValue, tensorValue, tensorValue),
    }),
  ),
  weighted(
    1,
    fc.record({
      type: fc.constant("offchain" as const),
      uri: fc.string({ maxLength: 40 }),
      outputHash: fc.bigInt({ min: 0n, max: MAX_UINT256 }),
    }),
  ),
  weighted(
    3,
    fc.record({
      type: fc.constant("error" as const),
      status: fc.constantFrom(STATUS.InvalidInput, STATUS.InputUnavailable, STATUS.ModelFailed),
      reason: fc.string({ maxLength: 60, unit: "grapheme" }),
    }),
  ),
);

const requestField = fc.constantFrom<RequestField>(
  "fee",
  "requester",
  "deadline",
  "callbackGasLimit",
  "inputHash",
  "inputIsRef",
);

const requestCommand: fc.Arbitrary<SysCmd> = command("request", {
  payer: callerIndex,
  fee: fc.oneof(
    weighted(1, fc.constant(MODEL_FEE)),
    weighted(4, fc.bigInt({ min: MODEL_FEE, max: 4n * MODEL_FEE })),
  ),
  viaConsumer: fc.boolean(),
  gasChoice: fc.nat({ max: 2 }),
  eoaGas: fc.integer({ min: 1, max: MAX_CALLBACK_GAS }),
  input: fc.tuple(smallInt, smallInt, smallInt, smallInt),
});

const sysCommand: fc.Arbitrary<SysCmd> = fc.oneof(
  weighted(8, requestCommand),
  weighted(
    1,
    command("requestInvalid", {
      payer: callerIndex,
      viaConsumer: fc.boolean(),
      fault: fc.constantFrom("feeTooLow" as const, "gasTooHigh" as const),
      x: fc.bigInt({ min: 0n, max: MODEL_FEE - 1n }),
    }),
  ),
  weighted(10, command("fulfill", { pick, anyRequest: rarely, node: nodeIndex, answer: answerArb })),
  weighted(
    3,
    command("fulfillBatch", {
      node: nodeIndex,
      items: fc.array(fc.record({ pick, answer: answerArb }), { minLength: 1, maxLength: 5 }),
      badHashAt: fc.option(fc.nat({ max: 4 }), { freq: 6 }),
    }),
  ),
  weighted(1, command("fulfillBadHash", { pick, node: nodeIndex, answer: answerArb })),
  weighted(1, command("fulfillByStranger", { pick, caller: callerIndex, answer: answerArb })),
  weighted(1, command("fulfillAgain", { pick, node: nodeIndex, answer: answerArb })),
  weighted(
    10,
    command("advance", {
      seconds: fc.oneof(
        weighted(1, fc.integer({ min: 1, max: 30 })),
        weighted(1, fc.integer({ min: CHALLENGE_WINDOW - 3, max: CHALLENGE_WINDOW + 3 })),
        weighted(3, fc.integer({ min: 61, max: 1_800 })),
        weighted(1, fc.integer({ min: REQUEST_TIMEOUT - 60, max: REQUEST_TIMEOUT + 60 })),
      ),
    }),
  ),
  weighted(1, command("advanceToDeadline", { pick, offset: fc.integer({ min: -1, max: 1 }) })),
  weighted(2, command("advanceToFinalizable", { pick, offset: fc.integer({ min: -1, max: 0 }) })),
  weighted(
    3,
    command("refund", {
      pick,
      anyRequest: rarely,
      caller: callerIndex,
      wait: fc.oneof(
        weighted(2, fc.constant(0)),
        weighted(1, fc.integer({ min: REQUEST_TIMEOUT - 2, max: REQUEST_TIMEOUT + 2 })),
        weighted(2, fc.integer({ min: REQUEST_TIMEOUT, max: 2 * REQUEST_TIMEOUT })),
      ),
    }),
  ),
  weighted(
    10,
    command("finalize", {
      pick,
      anyRequest: rarely,
      caller: callerIndex,
      wait: fc.oneof(
        weighted(2, fc.constant(0)),
        weighted(1, fc.integer({ min: CHALLENGE_WINDOW - 2, max: CHALLENGE_WINDOW + 2 })),
        weighted(3, fc.integer({ min: CHALLENGE_WINDOW, max: 1_800 })),
      ),
    }),
  ),
  weighted(
    2,
    command("forged", {
      action: fc.constantFrom("fulfill" as const, "refund" as const),
      pick,
      node: nodeIndex,
      field: requestField,
    }),
  ),
  weighted(
    1,
    command("forgedFinalize", {
      pick,
      field: fc.oneof(requestField, fc.constantFrom<FulfillmentField>("node", "outputHash", "fulfilledAt")),
    }),
  ),
  weighted(6, command("withdraw", { who: fc.nat({ max: 5 }), anyAccount: rarely, to: fc.nat({ max: 6 }) })),
);

/** 5 to 20 commands; the first one to three are requests, so that the rest have work to do. */
const systemSequence: fc.Arbitrary<SysCmd[]> = fc
  .tuple(
    fc.array(requestCommand, { minLength: 1, maxLength: 3 }),
    fc.array(sysCommand, { minLength: SEQUENCE.minLength - 1, maxLength: SEQUENCE.maxLength - 3 }),
  )
  .map(([first, rest]) => [...first, ...rest]);

// ---- the off-chain model

interface TrackedRequest {
  request: RequestStruct;
  hash: string; // requestHash(request)
  viaConsumer: boolean;
  state: number;
  fulfillment?: FulfillmentStruct;
  /** RequestRefunded and RequestReleased events the chain emitted for this request. */
  refunds: number;
  releases: number;
  /** The state read from the chain after the previous command. */
  observed: number;
}

interface SystemObservation {
  requestCount: bigint;
  hubBalance: bigint;
  settlementBalance: bigint;
  totalCredits: bigint;
  credits: bigint[]; // of ctx.accounts, in order
  states: bigint[]; // of the requests, in order
  commitments: string[];
  consumer: bigint[]; // lastRequestId, lastStatus, a, b, c
}

interface SystemCtx extends ModelClock<SystemObservation> {
  w: SystemWorld;
  requests: TrackedRequest[];
  credited: Map<string, bigint>; // everything ever credited, by lower-case address
  withdrawn: Map<string, bigint>;
  everCredited: Set<string>;
  feesIn: bigint;
  totalWithdrawn: bigint;
  consumerState: { lastRequestId: bigint; lastStatus: bigint; a: bigint; b: bigint; c: bigint };
  callers: Signer[]; // user, other, modelOwner
  withdrawers: Signer[]; // user, other, modelOwner, node1, node2, treasury
  nodes: Signer[]; // node1, node2
  addr: Map<Signer, string>;
  consumerAt: string;
  accounts: string[]; // every address that can hold credit, lower case
  interfaces: Map<string, Interface>;
}

const TERMINAL: readonly number[] = [STATE.Failed, STATE.Refunded, STATE.Finalized];
/** The hub's slot for a request: the state in the top byte, a commitment in the other 31. */
function expectedSlot(t: TrackedRequest): string {
  const h = t.fulfillment ? fulfillmentHash(t.request, t.fulfillment, t.hash) : t.hash;
  return commitmentSlot(t.state, h);
}

function creditOf(ctx: SystemCtx, account: string): bigint {
  const a = account.toLowerCase();
  return (ctx.credited.get(a) ?? 0n) - (ctx.withdrawn.get(a) ?? 0n);
}

function credit(ctx: SystemCtx, account: string, amount: bigint): void {
  const a = account.toLowerCase();
  ctx.credited.set(a, (ctx.credited.get(a) ?? 0n) + amount);
  ctx.everCredited.add(a);
}

interface AnswerData {
  status: number;
  output: string;
  outputHash: string;
}

function answerData(answer: Answer, badHash = false): AnswerData {
  let d: AnswerData;
  switch (answer.type) {
    case "success": {
      const output = encodeTensors([floatTensor("probabilities", answer.values)]);
      d = { status: STATUS.Success, output, outputHash: keccak256(output) };
      break;
    }
    case "offchain": {
      const output = coder.encode(["string"], ["gradnet://outputs/" + answer.uri]);
      // The hub cannot check an off-chain output's hash: a "bad" one is just another hash.
      return { status: STATUS.SuccessOffchain, output, outputHash: toBeHex(answer.outputHash, 32) };
    }
    case "error": {
      const output = hexlify(toUtf8Bytes(answer.reason));
      d = { status: answer.status, output, outputHash: keccak256(output) };
      break;
    }
  }
  if (badHash) d.outputHash = keccak256(concat([d.output, "0x01"]));
  return d;
}

function forgeRequest(ctx: SystemCtx, r: RequestStruct, field: RequestField): RequestStruct {
  const f = { ...r };
  switch (field) {
    case "fee":
      f.fee = r.fee + 1n;
      break;
    case "requester": {
      const other = ctx.addr.get(ctx.w.other)!;
      f.requester = r.requester === other ? ctx.addr.get(ctx.w.user)! : other;
      break;
    }
    case "deadline":
      f.deadline = r.deadline + 1n;
      break;
    case "callbackGasLimit":
      f.callbackGasLimit = r.callbackGasLimit + 1n;
      break;
    case "inputHash":
      f.inputHash = keccak256(r.inputHash);
      break;
    case "inputIsRef":
      f.inputIsRef = !r.inputIsRef;
      break;
  }
  return f;
}

/** The events and model changes of recording an answer (success or error) for `t`. */
function recordEffects(
  ctx: SystemCtx,
  t: TrackedRequest,
  node: string,
  data: AnswerData,
  answer: Answer,
  ts: number,
  events: string[],
  effects: Effect[],
): void {
  const r = t.request;
  const isError = data.status > STATUS.SuccessOffchain;
  let cb: number = CALLBACK.NotRequested;
  if (r.callbackGasLimit !== 0n) {
    if (!t.viaConsumer) cb = CALLBACK.NoCode;
    else cb = r.callbackGasLimit >= BigInt(CONSUMER_GAS_OK) ? CALLBACK.Success : CALLBACK.Reverted;
  }
  if (isError) {
    events.push(ev("RequestRefunded", r.requestId, r.requester, r.fee, STATE.Failed));
    events.push(ev("RefundCredited", r.requestId, r.requester, r.fee));
  }
  events.push(ev("InferenceFulfilled", r.requestId, node, data.status, data.outputHash, ts, cb, data.output));
  effects.push(() => {
    if (isError) {
      t.state = STATE.Failed;
      credit(ctx, r.requester, r.fee);
    } else {
      t.state = STATE.Fulfilled;
      t.fulfillment = { node, outputHash: data.outputHash, fulfilledAt: BigInt(ts) };
    }
    if (cb === CALLBACK.Success) {
      const c = ctx.consumerState;
      c.lastRequestId = r.requestId;
      c.lastStatus = BigInt(data.status);
      if (answer.type === "success") [c.a, c.b, c.c] = answer.values;
    }
    reached(stats.system, isError ? "failed" : "fulfilled");
    reached(stats.system, `callback ${Object.keys(CALLBACK)[cb]}`);
  });
}

/** Send in the next block; check the outcome and apply its effects to the model. */
async function transact(
  ctx: SystemCtx,
  send: () => Promise<ContractTransactionResponse>,
  outcome: Outcome,
): Promise<ContractTransactionReceipt | null> {
  const receipt = await sendNext(ctx, send, ctx.interfaces, outcome, stats.system);
  if (!receipt || "error" in outcome) return receipt;
  // Count refunds and payouts from the chain's own events, independently of the model.
  const hubAt = ctx.w.addresses.inferenceHub.toLowerCase();
  for (const log of receipt!.logs) {
    if (log.address.toLowerCase() !== hubAt) continue;
    const parsed = ctx.w.hub.interface.parseLog(log);
    if (parsed?.name !== "RequestRefunded" && parsed?.name !== "RequestReleased") continue;
    const t = ctx.requests[Number(parsed.args[0] as bigint) - 1]!;
    if (parsed.name === "RequestRefunded") t.refunds++;
    else t.releases++;
  }
  for (const apply of outcome.effects) apply();
  return receipt;
}

async function observeSystem(ctx: SystemCtx): Promise<SystemObservation> {
  const { w } = ctx;
  const hub = w.hub.interface as unknown as Interface;
  const settlement = w.settlement.interface as unknown as Interface;
  const consumer = w.consumer.interface as unknown as Interface;
  const hubAt = w.addresses.inferenceHub;
  const settlementAt = w.addresses.settlement;
  const ids = ctx.requests.map((t) => t.request.requestId);
  const consumerViews = ["lastRequestId", "lastStatus", "a", "b", "c"];
  const values = await readAll([
    view(hub, hubAt, "requestCount"),
    { to: hubAt, data: "0x" },
    { to: settlementAt, data: "0x" },
    view(settlement, settlementAt, "totalCredits"),
    ...ctx.accounts.map((a) => view(settlement, settlementAt, "credits", a)),
    ...ids.map((id) => view(hub, hubAt, "requestState", id)),
    ...ids.map((id) => view(hub, hubAt, "commitmentOf", id)),
    ...consumerViews.map((fn) => view(consumer, ctx.consumerAt, fn)),
  ]);
  let at = 0;
  const take = (n: number) => values.slice(at, (at += n)).map((words) => words[0]!);
  const [requestCount, hubBalance, settlementBalance, totalCredits] = take(4);
  return {
    requestCount: requestCount!,
    hubBalance: hubBalance!,
    settlementBalance: settlementBalance!,
    totalCredits: totalCredits!,
    credits: take(ctx.accounts.length),
    states: take(ids.length),
    commitments: take(ids.length).map((c) => toBeHex(c, 32)),
    // lastRequestId, lastStatus, then the int256 values a, b and c
    consumer: take(consumerViews.length).map((v, i) => (i < 2 ? v : BigInt.asIntN(256, v))),
  };
}

async function checkSystemInvariants(ctx: SystemCtx): Promise<void> {
  const o = await observeSystem(ctx);
  observed(ctx, o);
  same(o.requestCount, BigInt(ctx.requests.length), "requestCount()");

  // 1. The hub holds exactly the fees of the requests that are pending or in their challenge window.
  const escrowed = ctx.requests
    .filter((t) => t.state === STATE.Pending || t.state === STATE.Fulfilled)
    .reduce((sum, t) => sum + t.request.fee, 0n);
  same(o.hubBalance, escrowed, "invariant 1: hub balance == fees of Pending and Fulfilled requests");

  // 2. The settlement contract holds exactly what it owes.
  for (const a of ctx.everCredited) holds(ctx.accounts.includes(a), `credited account ${a} is not watched`);
  const owed = ctx.accounts.reduce((sum, a, i) => (ctx.everCredited.has(a) ? sum + o.credits[i]! : sum), 0n);
  same(o.settlementBalance, o.totalCredits, "invariant 2: settlement balance == totalCredits()");
  same(o.totalCredits, owed, "invariant 2: totalCredits() == sum of credits(account)");

  // 3. Not a wei created or lost.
  same(o.hubBalance + o.settlementBalance + ctx.totalWithdrawn, ctx.feesIn, "invariant 3: value conserved");

  // 4. Every request ends exactly once.
  ctx.requests.forEach((t, i) => {
    const id = t.request.requestId;
    const state = Number(o.states[i]);
    if (TERMINAL.includes(t.observed))
      same(state, t.observed, `invariant 4: request ${id} left its terminal state`);
    t.observed = state;
    same(state, t.state, `invariant 4: requestState(${id})`);
    same(o.commitments[i], expectedSlot(t), `invariant 4: commitmentOf(${id})`);
    holds(t.refunds + t.releases <= 1, `invariant 4: request ${id} was refunded and paid out`);
    const refunded = state === STATE.Failed || state === STATE.Refunded;
    same(t.refunds, refunded ? 1 : 0, `invariant 4: refunds of request ${id} (state ${state})`);
    same(
      t.releases,
      state === STATE.Finalized ? 1 : 0,
      `invariant 4: payouts of request ${id} (state ${state})`,
    );
  });

  // 5. Nobody is owed more than they were credited, less what they withdrew.
  ctx.accounts.forEach((a, i) => {
    const credited = ctx.credited.get(a) ?? 0n;
    holds(o.credits[i]! <= credited, `invariant 5: credits(${a}) = ${o.credits[i]} > ${credited} credited`);
    same(o.credits[i], creditOf(ctx, a), `invariant 5: credits(${a})`);
  });

  const c = ctx.consumerState;
  same(show(o.consumer), show([c.lastRequestId, c.lastStatus, c.a, c.b, c.c]), "StoringConsumer's storage");
}

// ---- the commands

async function fulfill(
  ctx: SystemCtx,
  t: TrackedRequest,
  sent: RequestStruct,
  signer: Signer,
  answer: Answer,
  badHash = false,
): Promise<void> {
  const { w } = ctx;
  const id = t.request.requestId;
  const sender = ctx.addr.get(signer)!;
  const data = answerData(answer, badHash);
  const ts = ctx.now + 1;
  const actualHash = keccak256(data.output);
  const events: string[] = [];
  const effects: Effect[] = [];
  // In the order the hub checks.
  let outcome: Outcome;
  if (t.state !== STATE.Pending) outcome = err(w.hub, "Hub__WrongState", id, t.state);
  else if (requestHash(sent) !== requestHash(t.request)) outcome = err(w.hub, "Hub__CommitmentMismatch", id);
  else if (BigInt(ts) > t.request.deadline)
    outcome = err(w.hub, "Hub__RequestExpired", id, t.request.deadline);
  else if (!ctx.nodes.includes(signer)) outcome = err(w.hub, "Hub__NotInferenceNode", sender);
  else if (data.status !== STATUS.SuccessOffchain && actualHash !== data.outputHash) {
    outcome = err(w.hub, "Hub__OutputHashMismatch", id, data.outputHash, actualHash);
  } else {
    recordEffects(ctx, t, sender, data, answer, ts, events, effects);
    outcome = { events, effects };
  }
  await transact(
    ctx,
    () =>
      w.hub
        .connect(signer)
        .fulfill(sent, data.status, data.output, data.outputHash, { gasLimit: GAS.fulfill }),
    outcome,
  );
}

async function refund(ctx: SystemCtx, t: TrackedRequest, sent: RequestStruct, caller: Signer): Promise<void> {
  const { w } = ctx;
  const r = t.request;
  let outcome: Outcome;
  if (t.state !== STATE.Pending) outcome = err(w.hub, "Hub__WrongState", r.requestId, t.state);
  else if (requestHash(sent) !== requestHash(r)) outcome = err(w.hub, "Hub__CommitmentMismatch", r.requestId);
  else if (BigInt(ctx.now + 1) <= r.deadline)
    outcome = err(w.hub, "Hub__NotExpired", r.requestId, r.deadline);
  else {
    outcome = {
      events: [
        ev("RequestRefunded", r.requestId, r.requester, r.fee, STATE.Refunded),
        ev("RefundCredited", r.requestId, r.requester, r.fee),
      ],
      effects: [
        () => {
          t.state = STATE.Refunded;
          credit(ctx, r.requester, r.fee);
          reached(stats.system, "refunded");
        },
      ],
    };
  }
  await transact(ctx, () => w.hub.connect(caller).refundExpired(sent, { gasLimit: GAS.other }), outcome);
}

/** The fulfilment to pass for `t`; a made-up one (past any window) when it has none. */
function fulfillmentFor(ctx: SystemCtx, t: TrackedRequest): FulfillmentStruct {
  return t.fulfillment ?? { node: ctx.addr.get(ctx.w.node1)!, outputHash: ZeroHash, fulfilledAt: 0n };
}

async function finalize(
  ctx: SystemCtx,
  t: TrackedRequest,
  sent: RequestStruct,
  sentFulfillment: FulfillmentStruct,
  caller: Signer,
): Promise<void> {
  const { w } = ctx;
  const r = t.request;
  const at = sentFulfillment.fulfilledAt + BigInt(CHALLENGE_WINDOW);
  let outcome: Outcome;
  if (BigInt(ctx.now + 1) < at)
    outcome = err(w.settlement, "Settlement__ChallengeWindowOpen", r.requestId, at);
  else if (t.state !== STATE.Fulfilled) outcome = err(w.hub, "Hub__WrongState", r.requestId, t.state);
  else if (fulfillmentHash(sent, sentFulfillment) !== fulfillmentHash(r, t.fulfillment!)) {
    outcome = err(w.hub, "Hub__CommitmentMismatch", r.requestId);
  } else {
    const node = t.fulfillment!.node;
    const { owner: ownerAmount, protocol: protocolAmount, nodes: nodeAmount } = feeSplit(r.fee);
    const modelOwner = ctx.addr.get(w.modelOwner)!;
    outcome = {
      events: [
        ev("RequestReleased", r.requestId, r.fee),
        ev("Settled", r.requestId, node, modelOwner, nodeAmount, ownerAmount, protocolAmount),
      ],
      effects: [
        () => {
          t.state = STATE.Finalized;
          credit(ctx, node, nodeAmount);
          credit(ctx, modelOwner, ownerAmount);
          credit(ctx, ctx.addr.get(w.treasury)!, protocolAmount);
          reached(stats.system, "finalized");
        },
      ],
    };
  }
  await transact(
    ctx,
    () => w.settlement.connect(caller).finalize(sent, sentFulfillment, { gasLimit: GAS.other }),
    outcome,
  );
}

/** Let `seconds` pass: mine an empty block that much later. */
async function advance(ctx: SystemCtx, seconds: number): Promise<void> {
  if (seconds === 0) return;
  ctx.now += seconds;
  await mineAt(ctx.now);
}

/** Run one command; returns false when it had nothing to act on. */
async function execSystem(ctx: SystemCtx, cmd: SysCmd): Promise<boolean> {
  const { w } = ctx;
  const isPending = (t: TrackedRequest) => t.state === STATE.Pending;
  const isFulfilled = (t: TrackedRequest) => t.state === STATE.Fulfilled;
  const inputOf = (values: bigint[]) => encodeTensors([floatTensor("input", values)]);
  const sendRequest = (payer: Signer, viaConsumer: boolean, input: string, gas: number, value: bigint) =>
    viaConsumer
      ? w.consumer.connect(payer).request(MODEL_ID, input, gas, { value, gasLimit: GAS.request })
      : w.hub.connect(payer).requestInference(MODEL_ID, input, gas, { value, gasLimit: GAS.request });

  switch (cmd.kind) {
    case "request": {
      const payer = ctx.callers[cmd.payer]!;
      const requester = cmd.viaConsumer ? ctx.consumerAt : ctx.addr.get(payer)!;
      // A consumer asks for no callback, a starved one, or enough gas; an EOA for none or any.
      const gas = cmd.viaConsumer
        ? [0, CONSUMER_GAS_STARVED, CONSUMER_GAS_OK][cmd.gasChoice]!
        : cmd.gasChoice === 0
          ? 0
          : cmd.eoaGas;
      const input = inputOf(cmd.input);
      const request: RequestStruct = {
        requestId: BigInt(ctx.requests.length + 1),
        modelId: MODEL_ID,
        requester,
        callbackGasLimit: BigInt(gas),
        deadline: BigInt(ctx.now + 1 + REQUEST_TIMEOUT),
        fee: cmd.fee,
        inputHash: sha256(input),
        inputIsRef: false,
        redundancy: 1n,
      };
      await transact(ctx, () => sendRequest(payer, cmd.viaConsumer, input, gas, cmd.fee), {
        events: [
          ev("InferenceRequested", request.requestId, MODEL_ID, requester, requestTuple(request), input),
        ],
        effects: [
          () => {
            ctx.requests.push({
              request,
              hash: requestHash(request),
              viaConsumer: cmd.viaConsumer,
              state: STATE.Pending,
              refunds: 0,
              releases: 0,
              observed: STATE.Pending,
            });
            ctx.feesIn += cmd.fee;
            reached(stats.system, cmd.viaConsumer ? "requested via consumer" : "requested by EOA");
          },
        ],
      });
      return true;
    }
    case "requestInvalid": {
      const payer = ctx.callers[cmd.payer]!;
      const tooMuchGas = MAX_CALLBACK_GAS + 1 + Number(cmd.x % 1_000n);
      const [fee, gas, outcome] =
        cmd.fault === "feeTooLow"
          ? [cmd.x, 0, err(w.hub, "Hub__FeeTooLow", MODEL_ID, cmd.x, MODEL_FEE)]
          : [MODEL_FEE, tooMuchGas, err(w.hub, "Hub__CallbackGasTooHigh", tooMuchGas, MAX_CALLBACK_GAS)];
      await transact(
        ctx,
        () => sendRequest(payer, cmd.viaConsumer, inputOf([1n, 2n, 3n, 4n]), gas, fee),
        outcome,
      );
      return true;
    }
    case "fulfill":
    case "fulfillBadHash":
    case "fulfillByStranger":
    case "fulfillAgain": {
      const t =
        cmd.kind === "fulfillAgain"
          ? choose(ctx.requests, cmd.pick, (x) => !isPending(x))
          : choose(ctx.requests, cmd.pick, cmd.kind === "fulfill" && cmd.anyRequest ? undefined : isPending);
      if (!t) return false;
      const signer = cmd.kind === "fulfillByStranger" ? ctx.callers[cmd.caller]! : ctx.nodes[cmd.node]!;
      await fulfill(ctx, t, t.request, signer, cmd.answer, cmd.kind === "fulfillBadHash");
      return true;
    }
    case "fulfillBatch": {
      if (ctx.requests.length === 0) return false;
      const signer = ctx.nodes[cmd.node]!;
      const node = ctx.addr.get(signer)!;
      const ts = ctx.now + 1;
      // Item by item, as the hub does: answered, expired or repeated requests are skipped, and
      // one bad output hash among the recorded items reverts the whole batch.
      const after = new Map<TrackedRequest, number>();
      const events: string[] = [];
      const effects: Effect[] = [];
      const items: { request: RequestStruct; status: number; output: string; outputHash: string }[] = [];
      let outcome: Outcome | undefined;
      let recorded = 0;
      for (const [i, item] of cmd.items.entries()) {
        // Mostly pending requests; when there are none, the batch's items are all skipped.
        const t = choose(ctx.requests, item.pick, isPending) ?? choose(ctx.requests, item.pick)!;
        const data = answerData(
          item.answer,
          cmd.badHashAt !== null && cmd.badHashAt % cmd.items.length === i,
        );
        items.push({ request: t.request, ...data });
        if (outcome || (after.get(t) ?? t.state) !== STATE.Pending || BigInt(ts) > t.request.deadline)
          continue;
        const actual = keccak256(data.output);
        if (data.status !== STATUS.SuccessOffchain && actual !== data.outputHash) {
          outcome = err(w.hub, "Hub__OutputHashMismatch", t.request.requestId, data.outputHash, actual);
          continue;
        }
        recordEffects(ctx, t, node, data, item.answer, ts, events, effects);
        after.set(t, data.status > STATUS.SuccessOffchain ? STATE.Failed : STATE.Fulfilled);
        recorded++;
      }
      if (!outcome) {
        outcome = { events, effects };
        reached(stats.system, `batch recorded ${recorded} of ${items.length}`);
      }
      await transact(ctx, () => w.hub.connect(signer).fulfillBatch(items, { gasLimit: GAS.batch }), outcome);
      return true;
    }
    case "advance": {
      await advance(ctx, cmd.seconds);
      return true;
    }
    case "advanceToDeadline":
    case "advanceToFinalizable": {
      // Put the next call's block exactly on the boundary (plus `offset` seconds).
      const toDeadline = cmd.kind === "advanceToDeadline";
      const t = choose(ctx.requests, cmd.pick, toDeadline ? isPending : isFulfilled);
      if (!t) return false;
      const boundary = toDeadline
        ? Number(t.request.deadline)
        : Number(fulfillmentFor(ctx, t).fulfilledAt) + CHALLENGE_WINDOW;
      const target = boundary + cmd.offset - 1;
      if (target <= ctx.now) return false;
      ctx.now = target;
      await mineAt(target);
      return true;
    }
    case "refund": {
      const t = choose(ctx.requests, cmd.pick, cmd.anyRequest ? undefined : isPending);
      if (!t) return false;
      await advance(ctx, cmd.wait);
      await refund(ctx, t, t.request, ctx.callers[cmd.caller]!);
      return true;
    }
    case "finalize": {
      const t = choose(ctx.requests, cmd.pick, cmd.anyRequest ? undefined : isFulfilled);
      if (!t) return false;
      await advance(ctx, cmd.wait);
      await finalize(ctx, t, t.request, fulfillmentFor(ctx, t), ctx.callers[cmd.caller]!);
      return true;
    }
    case "forged": {
      const t = choose(ctx.requests, cmd.pick, isPending);
      if (!t) return false;
      const forged = forgeRequest(ctx, t.request, cmd.field);
      if (cmd.action === "refund") await refund(ctx, t, forged, w.user);
      else await fulfill(ctx, t, forged, ctx.nodes[cmd.node]!, { type: "success", values: [1n, 2n, 3n] });
      return true;
    }
    case "forgedFinalize": {
      const t = choose(ctx.requests, cmd.pick, isFulfilled);
      if (!t) return false;
      const f = { ...fulfillmentFor(ctx, t) };
      let sent = t.request;
      const [node1, node2] = [ctx.addr.get(w.node1)!, ctx.addr.get(w.node2)!];
      if (cmd.field === "node") f.node = f.node === node1 ? node2 : node1;
      else if (cmd.field === "outputHash") f.outputHash = keccak256(f.outputHash);
      else if (cmd.field === "fulfilledAt") f.fulfilledAt = f.fulfilledAt > 0n ? f.fulfilledAt - 1n : 1n;
      else sent = forgeRequest(ctx, t.request, cmd.field);
      await finalize(ctx, t, sent, f, w.user);
      return true;
    }
    case "withdraw": {
      const hasCredit = (s: Signer) => creditOf(ctx, ctx.addr.get(s)!) > 0n;
      const who = choose(ctx.withdrawers, cmd.who, cmd.anyAccount ? undefined : hasCredit);
      if (!who) return false;
      const account = ctx.addr.get(who)!;
      const to = cmd.to < ctx.withdrawers.length ? ctx.addr.get(ctx.withdrawers[cmd.to]!)! : account;
      const amount = creditOf(ctx, account);
      await withdrawCredit(
        w.settlement,
        who,
        account,
        to,
        amount,
        (send, o) => transact(ctx, send, o),
        () => {
          const a = account.toLowerCase();
          ctx.withdrawn.set(a, (ctx.withdrawn.get(a) ?? 0n) + amount);
          ctx.totalWithdrawn += amount;
          reached(stats.system, "withdrawn");
        },
      );
      return true;
    }
  }
}

async function runSystemSequence(cmds: SysCmd[]): Promise<void> {
  const w = await loadFixture(systemFixture);
  const withdrawers = [w.user, w.other, w.modelOwner, w.node1, w.node2, w.treasury];
  const addr = new Map<Signer, string>();
  for (const s of withdrawers) addr.set(s, await s.getAddress());
  const consumerAt = await w.consumer.getAddress();
  const ctx: SystemCtx = {
    w,
    now: await latestTimestamp(),
    requests: [],
    credited: new Map(),
    withdrawn: new Map(),
    everCredited: new Set(),
    feesIn: 0n,
    totalWithdrawn: 0n,
    consumerState: { lastRequestId: 0n, lastStatus: 0n, a: 0n, b: 0n, c: 0n },
    callers: [w.user, w.other, w.modelOwner],
    withdrawers,
    nodes: [w.node1, w.node2],
    addr,
    consumerAt,
    accounts: [...addr.values(), consumerAt].map((a) => a.toLowerCase()),
    interfaces: new Map<string, Interface>([
      [w.addresses.inferenceHub.toLowerCase(), w.hub.interface as unknown as Interface],
      [w.addresses.settlement.toLowerCase(), w.settlement.interface as unknown as Interface],
    ]),
  };
  // The model starts from an empty escrow.
  expect(await balanceOf(w.addresses.inferenceHub), "fixture: hub balance").to.equal(0n);
  expect(await balanceOf(w.addresses.settlement), "fixture: settlement balance").to.equal(0n);
  stats.system.sequences++;
  await checkSystemInvariants(ctx);
  for (const cmd of cmds) {
    stats.system.commands++;
    // A command that found nothing to act on sent nothing: there is nothing new to check.
    if (await execSystem(ctx, cmd)) await checkSystemInvariants(ctx);
    else stats.system.noops++;
  }
  expect(await latestTimestamp(), "harness: the model's clock").to.equal(ctx.now);
}

// ========================================================================= node registry slashing

interface NodeWorld {
  registry: NodeRegistry;
  slasher: Signer;
  stranger: Signer;
  nodes: Signer[];
}

/** A standalone NodeRegistry whose "settlement contract" is a plain account, which slashes. */
async function nodeRegistryFixture(): Promise<NodeWorld> {
  const signers = await hre.ethers.getSigners();
  const [owner, slasher, stranger] = [signers[0]!, signers[9]!, signers[14]!];
  const factory = await hre.ethers.getContractFactory("NodeRegistry", owner);
  const registry = (await factory.deploy(slasher.address)) as unknown as NodeRegistry;
  await registry.waitForDeployment();
  await (await registry.initialize(owner.address, DEVNET_PARAMS.stake)).wait();
  await installBatchReader();
  return { registry, slasher, stranger, nodes: signers.slice(10, 14) };
}

/** An amount relative to the node's stake when the command runs. */
type AmountSpec =
  | { mode: "zero" }
  | { mode: "bps"; bps: number } // of the bonded stake
  | { mode: "stake" } // all the bonded stake
  | { mode: "all" } // bonded + unbonding
  | { mode: "more"; extra: bigint } // bonded + unbonding + extra
  | { mode: "max" } // type(uint256).max
  | { mode: "raw"; value: bigint };

/** A registration stake relative to the chosen roles' minimum. */
type StakeSpec = { mode: "min" } | { mode: "above"; extra: bigint } | { mode: "below"; short: bigint };

/** `node` picks one of four signers; `anyNode` lets it pick one the command cannot succeed for. */
type NodeCmd =
  | { kind: "register"; node: number; anyNode: boolean; roles: number; stake: StakeSpec }
  | { kind: "addStake"; node: number; anyNode: boolean; value: bigint }
  | { kind: "setRoles"; node: number; anyNode: boolean; roles: number }
  | { kind: "startUnbonding"; node: number; anyNode: boolean; amount: AmountSpec }
  | { kind: "withdraw"; node: number; anyNode: boolean; wait: number }
  | { kind: "slash"; node: number; anyNode: boolean; amount: AmountSpec }
  | { kind: "slashByStranger"; node: number; amount: bigint }
  | { kind: "advance"; seconds: number }
  | { kind: "advanceToRelease"; node: number; offset: number };

const MIN_STAKE: Record<number, bigint> = {
  [ROLE.INFERENCE]: DEVNET_PARAMS.stake.minStakeInference,
  [ROLE.VERIFIER]: DEVNET_PARAMS.stake.minStakeVerifier,
  [ROLE.DATA]: DEVNET_PARAMS.stake.minStakeData,
};
const ROLE_BITS = [ROLE.INFERENCE, ROLE.VERIFIER, ROLE.DATA];
const ALL_ROLES = ROLE.INFERENCE | ROLE.VERIFIER | ROLE.DATA;
const UNBONDING_DELAY = DEVNET_PARAMS.stake.unbondingDelay;
const JAIL_PERIOD = DEVNET_PARAMS.stake.jailPeriod;

const amountSpec: fc.Arbitrary<AmountSpec> = fc.oneof(
  fc.constant({ mode: "zero" as const }),
  fc.record({ mode: fc.constant("bps" as const), bps: fc.integer({ min: 1, max: 10_000 }) }),
  fc.constant({ mode: "stake" as const }),
  fc.constant({ mode: "all" as const }),
  fc.record({ mode: fc.constant("more" as const), extra: fc.bigInt({ min: 1n, max: 2n * ETH }) }),
  fc.constant({ mode: "max" as const }),
  fc.record({ mode: fc.constant("raw" as const), value: fc.bigInt({ min: 0n, max: 3n * ETH }) }),
);
const stakeSpec: fc.Arbitrary<StakeSpec> = fc.oneof(
  weighted(1, fc.constant({ mode: "min" as const })),
  weighted(
    4,
    fc.record({ mode: fc.constant("above" as const), extra: fc.bigInt({ min: 1n, max: 3n * ETH }) }),
  ),
  weighted(1, fc.record({ mode: fc.constant("below" as const), short: fc.bigInt({ min: 1n, max: ETH }) })),
);
const node4 = fc.nat({ max: 3 });
const validRoles = fc.integer({ min: 1, max: ALL_ROLES });
const anyRoles = fc.oneof(weighted(6, validRoles), weighted(1, fc.constantFrom(0, 8, 9, 255)));

const registerCommand: fc.Arbitrary<NodeCmd> = command("register", {
  node: node4,
  anyNode: rarely,
  roles: anyRoles,
  stake: stakeSpec,
});

const nodeCommand: fc.Arbitrary<NodeCmd> = fc.oneof(
  weighted(4, registerCommand),
  weighted(
    3,
    command("addStake", {
      node: node4,
      anyNode: rarely,
      value: fc.oneof(weighted(1, fc.constant(0n)), weighted(6, fc.bigInt({ min: 1n, max: 2n * ETH }))),
    }),
  ),
  weighted(2, command("setRoles", { node: node4, anyNode: rarely, roles: fc.integer({ min: 0, max: 9 }) })),
  weighted(5, command("startUnbonding", { node: node4, anyNode: rarely, amount: amountSpec })),
  weighted(
    3,
    command("withdraw", {
      node: node4,
      anyNode: rarely,
      wait: fc.oneof(
        weighted(2, fc.constant(0)),
        weighted(1, fc.integer({ min: UNBONDING_DELAY - 2, max: UNBONDING_DELAY + 2 })),
        weighted(2, fc.integer({ min: UNBONDING_DELAY, max: 2 * UNBONDING_DELAY })),
      ),
    }),
  ),
  weighted(6, command("slash", { node: node4, anyNode: rarely, amount: amountSpec })),
  weighted(1, command("slashByStranger", { node: node4, amount: fc.bigInt({ min: 0n, max: 2n * ETH }) })),
  weighted(
    3,
    command("advance", {
      seconds: fc.oneof(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: UNBONDING_DELAY - 3, max: UNBONDING_DELAY + 3 }),
        fc.integer({ min: JAIL_PERIOD - 3, max: JAIL_PERIOD + 3 }),
      ),
    }),
  ),
  weighted(2, command("advanceToRelease", { node: node4, offset: fc.integer({ min: -1, max: 0 }) })),
);

/** 5 to 20 commands; the first one or two are registrations. */
const nodeSequence: fc.Arbitrary<NodeCmd[]> = fc
  .tuple(
    fc.array(registerCommand, { minLength: 1, maxLength: 2 }),
    fc.array(nodeCommand, { minLength: SEQUENCE.minLength - 1, maxLength: SEQUENCE.maxLength - 2 }),
  )
  .map(([first, rest]) => [...first, ...rest]);

interface NodeState {
  stake: bigint;
  roles: bigint;
  jailedUntil: bigint;
  unbonding: bigint;
  unbondingReleaseAt: bigint;
  registeredAt: bigint;
}

interface NodeObservation {
  balance: bigint;
  infos: NodeState[];
}

function resolveAmount(spec: AmountSpec, n: NodeState): bigint {
  switch (spec.mode) {
    case "zero":
      return 0n;
    case "bps":
      return (n.stake * BigInt(spec.bps)) / BPS;
    case "stake":
      return n.stake;
    case "all":
      return n.stake + n.unbonding;
    case "more":
      return n.stake + n.unbonding + spec.extra;
    case "max":
      return MAX_UINT256;
    case "raw":
      return spec.value;
  }
}

function minStakeFor(roles: number): bigint {
  return ROLE_BITS.reduce((max, r) => ((roles & r) !== 0 && MIN_STAKE[r]! > max ? MIN_STAKE[r]! : max), 0n);
}

function resolveStake(spec: StakeSpec, roles: number): bigint {
  const min = minStakeFor(roles);
  if (spec.mode === "min") return min;
  if (spec.mode === "above") return min + spec.extra;
  return spec.short >= min ? 0n : min - spec.short;
}

async function runNodeSequence(cmds: NodeCmd[]): Promise<void> {
  const w = await loadFixture(nodeRegistryFixture);
  const reg = w.registry;
  const registryAt = await reg.getAddress();
  const iface = reg.interface as unknown as Interface;
  const interfaces = new Map<string, Interface>([[registryAt.toLowerCase(), iface]]);
  const addresses = await Promise.all(w.nodes.map((n) => n.getAddress()));
  const slasherAt = await w.slasher.getAddress();
  const strangerAt = await w.stranger.getAddress();
  const nodes: NodeState[] = addresses.map(() => ({
    stake: 0n,
    roles: 0n,
    jailedUntil: 0n,
    unbonding: 0n,
    unbondingReleaseAt: 0n,
    registeredAt: 0n,
  }));
  let now = await latestTimestamp();
  let deposited = 0n;
  let withdrawnByNodes = 0n;
  let slashedReturned = 0n; // slash()'s return values, read with staticCall before sending
  let slashedEmitted = 0n; // NodeSlashed's `slashed`
  let slasherReceived = 0n; // the slasher's balance changes, net of its gas
  let unchanged: { observation: NodeObservation; reason: string } | undefined;
  let last: NodeObservation | undefined;

  const observe = async (): Promise<NodeObservation> => {
    const [balance, ...infos] = await readAll([
      { to: registryAt, data: "0x" },
      ...addresses.map((a) => view(iface, registryAt, "nodeInfo", a)),
    ]);
    const asState = ([stake, roles, jailedUntil, unbonding, unbondingReleaseAt, registeredAt]: bigint[]) => ({
      stake: stake!,
      roles: roles!,
      jailedUntil: jailedUntil!,
      unbonding: unbonding!,
      unbondingReleaseAt: unbondingReleaseAt!,
      registeredAt: registeredAt!,
    });
    return { balance: balance![0]!, infos: infos.map(asState) };
  };

  const check = async () => {
    const o = await observe();
    if (unchanged) same(show(o), show(unchanged.observation), unchanged.reason);
    unchanged = undefined;
    last = o;
    same(show(o.infos), show(nodes), "nodeInfo of every node");
    const held = o.infos.reduce((sum, n) => sum + n.stake + n.unbonding, 0n);
    same(o.balance, held, "registry balance == sum of stake + unbonding");
    same(o.balance + withdrawnByNodes + slasherReceived, deposited, "value conserved");
    same(slasherReceived, slashedReturned, "the slasher received the sum of slash()'s return values");
    same(slashedEmitted, slashedReturned, "NodeSlashed's amounts sum to slash()'s return values");
  };

  /** Send in the next block; an expected error must leave everything as it was. */
  const transact = async (
    send: () => Promise<ContractTransactionResponse>,
    outcome: { error: ExpectedError } | { events: string[] },
  ): Promise<ContractTransactionReceipt | null> => {
    const receipt = await sendAt(now + 1, send, interfaces, outcome, stats.nodes);
    now += 1;
    if ("error" in outcome) {
      unchanged = { observation: last!, reason: `a reverted call (${outcome.error.name}) changed state` };
    }
    return receipt;
  };

  const advance = async (seconds: number) => {
    if (seconds === 0) return;
    now += seconds;
    await mineAt(now);
  };

  const reverts = async (
    send: () => Promise<ContractTransactionResponse>,
    error: { error: ExpectedError },
  ) => {
    await transact(send, error);
    return true;
  };

  const isRegistered = (i: number) => nodes[i]!.registeredAt !== 0n;
  /** A node index: any node if `anyNode`, else one that is (or is not) registered, if there is one. */
  const pickNode = (index: number, anyNode: boolean, wantRegistered: boolean) =>
    choose([0, 1, 2, 3], index, anyNode ? undefined : (i) => isRegistered(i) === wantRegistered);
  const notRegistered = (i: number) =>
    isRegistered(i) ? undefined : err(reg, "NodeRegistry__NotRegistered", addresses[i]!);
  const belowMinimum = (roles: number, stake: bigint) => {
    const role = ROLE_BITS.find((r) => (roles & r) !== 0 && stake < MIN_STAKE[r]!);
    return role === undefined
      ? undefined
      : err(reg, "NodeRegistry__StakeBelowMinimum", role, stake, MIN_STAKE[role]!);
  };

  const exec = async (cmd: NodeCmd): Promise<boolean> => {
    const ts = BigInt(now + 1);
    switch (cmd.kind) {
      case "register": {
        const i = pickNode(cmd.node, cmd.anyNode, false);
        if (i === undefined) return false;
        const n = nodes[i]!;
        const value = resolveStake(cmd.stake, cmd.roles);
        const send = () => reg.connect(w.nodes[i]!).register(cmd.roles, { value, gasLimit: GAS.other });
        const error =
          (isRegistered(i) ? err(reg, "NodeRegistry__AlreadyRegistered", addresses[i]!) : undefined) ??
          (cmd.roles === 0 || (cmd.roles & ~ALL_ROLES) !== 0
            ? err(reg, "NodeRegistry__InvalidRoles", cmd.roles)
            : belowMinimum(cmd.roles, value));
        if (error) return reverts(send, error);
        await transact(send, { events: [ev("NodeRegistered", addresses[i]!, cmd.roles, value)] });
        Object.assign(n, { stake: value, roles: BigInt(cmd.roles), registeredAt: ts });
        deposited += value;
        reached(stats.nodes, "registered");
        return true;
      }
      case "addStake": {
        const i = pickNode(cmd.node, cmd.anyNode, true);
        if (i === undefined) return false;
        const n = nodes[i]!;
        const send = () => reg.connect(w.nodes[i]!).addStake({ value: cmd.value, gasLimit: GAS.other });
        const error =
          notRegistered(i) ?? (cmd.value === 0n ? err(reg, "NodeRegistry__ZeroAmount") : undefined);
        if (error) return reverts(send, error);
        await transact(send, { events: [ev("StakeAdded", addresses[i]!, cmd.value, n.stake + cmd.value)] });
        n.stake += cmd.value;
        deposited += cmd.value;
        reached(stats.nodes, "stake added");
        return true;
      }
      case "setRoles": {
        const i = pickNode(cmd.node, cmd.anyNode, true);
        if (i === undefined) return false;
        const n = nodes[i]!;
        const send = () => reg.connect(w.nodes[i]!).setRoles(cmd.roles, { gasLimit: GAS.other });
        const error =
          notRegistered(i) ??
          ((cmd.roles & ~ALL_ROLES) !== 0
            ? err(reg, "NodeRegistry__InvalidRoles", cmd.roles)
            : belowMinimum(cmd.roles, n.stake));
        if (error) return reverts(send, error);
        await transact(send, { events: [ev("RolesChanged", addresses[i]!, n.roles, cmd.roles)] });
        n.roles = BigInt(cmd.roles);
        reached(stats.nodes, "roles changed");
        return true;
      }
      case "startUnbonding": {
        const i = pickNode(cmd.node, cmd.anyNode, true);
        if (i === undefined) return false;
        const n = nodes[i]!;
        const amount = resolveAmount(cmd.amount, n);
        const send = () => reg.connect(w.nodes[i]!).startUnbonding(amount, { gasLimit: GAS.other });
        const error =
          notRegistered(i) ??
          (amount === 0n
            ? err(reg, "NodeRegistry__ZeroAmount")
            : amount > n.stake
              ? err(reg, "NodeRegistry__InsufficientStake", amount, n.stake)
              : undefined);
        if (error) return reverts(send, error);
        const releaseAt = ts + BigInt(UNBONDING_DELAY);
        await transact(send, {
          events: [ev("UnbondingStarted", addresses[i]!, amount, n.unbonding + amount, releaseAt)],
        });
        n.stake -= amount;
        n.unbonding += amount;
        n.unbondingReleaseAt = releaseAt;
        reached(stats.nodes, "unbonding started");
        return true;
      }
      case "withdraw": {
        const i = choose([0, 1, 2, 3], cmd.node, cmd.anyNode ? undefined : (x) => nodes[x]!.unbonding > 0n);
        if (i === undefined) return false;
        await advance(cmd.wait);
        const n = nodes[i]!;
        const who = addresses[i]!;
        const send = () => reg.connect(w.nodes[i]!).withdraw({ gasLimit: GAS.other });
        const error =
          notRegistered(i) ??
          (n.unbonding === 0n
            ? err(reg, "NodeRegistry__NothingUnbonding", who)
            : BigInt(now + 1) < n.unbondingReleaseAt
              ? err(reg, "NodeRegistry__StillUnbonding", who, n.unbondingReleaseAt)
              : undefined);
        if (error) return reverts(send, error);
        const before = await balanceOf(who);
        const receipt = await transact(send, { events: [ev("StakeWithdrawn", who, n.unbonding)] });
        const received = (await balanceOf(who)) - before + receipt!.fee;
        expect(received, "the node received its unbonded stake").to.equal(n.unbonding);
        withdrawnByNodes += n.unbonding;
        n.unbonding = 0n;
        n.unbondingReleaseAt = 0n;
        reached(stats.nodes, "withdrawn");
        return true;
      }
      case "slashByStranger": {
        const who = addresses[cmd.node]!;
        const send = () => reg.connect(w.stranger).slash(who, cmd.amount, true, { gasLimit: GAS.other });
        await transact(send, err(reg, "NodeRegistry__OnlySettlement", strangerAt));
        return true;
      }
      case "slash": {
        const i = pickNode(cmd.node, cmd.anyNode, true);
        if (i === undefined) return false;
        const n = nodes[i]!;
        const who = addresses[i]!;
        const amount = resolveAmount(cmd.amount, n);
        const send = () => reg.connect(w.slasher).slash(who, amount, true, { gasLimit: GAS.other });
        const error = notRegistered(i);
        if (error) return reverts(send, error);
        const available = n.stake + n.unbonding;
        const expected = amount < available ? amount : available;
        const returned = await reg.connect(w.slasher).slash.staticCall(who, amount, true);
        expect(returned, "slashed never exceeds stake + unbonding").to.be.lte(available);
        expect(returned, "slash() takes min(amount, stake + unbonding)").to.equal(expected);
        const jailEnd = ts + BigInt(JAIL_PERIOD);
        const jailedUntil = jailEnd > n.jailedUntil ? jailEnd : n.jailedUntil;
        const before = await balanceOf(slasherAt);
        const receipt = await transact(send, {
          events: [ev("NodeSlashed", who, amount, expected, jailedUntil)],
        });
        const parsed = receipt!.logs.map((l) => iface.parseLog(l)).find((p) => p?.name === "NodeSlashed");
        slashedEmitted += parsed!.args[2] as bigint;
        slashedReturned += returned;
        slasherReceived += (await balanceOf(slasherAt)) - before + receipt!.fee;
        // Bonded stake first, then what is unbonding.
        const fromBonded = expected <= n.stake ? expected : n.stake;
        n.stake -= fromBonded;
        n.unbonding -= expected - fromBonded;
        n.jailedUntil = jailedUntil;
        const what = expected === 0n ? "nothing" : expected === available ? "everything" : "part";
        reached(stats.nodes, `slashed ${what}${expected > fromBonded ? " (into unbonding)" : ""}`);
        return true;
      }
      case "advance": {
        await advance(cmd.seconds);
        return true;
      }
      case "advanceToRelease": {
        const i = choose([0, 1, 2, 3], cmd.node, (x) => nodes[x]!.unbonding > 0n);
        if (i === undefined) return false;
        const target = Number(nodes[i]!.unbondingReleaseAt) + cmd.offset - 1;
        if (target <= now) return false;
        now = target;
        await mineAt(target);
        return true;
      }
    }
  };

  stats.nodes.sequences++;
  await check();
  for (const cmd of cmds) {
    stats.nodes.commands++;
    if (await exec(cmd)) await check();
    else stats.nodes.noops++;
  }
  expect(await latestTimestamp(), "harness: the model's clock").to.equal(now);
}

// ========================================================================================= tests

describe("properties (fast-check, random call sequences)", function () {
  const systemRuns = configuredRuns(CI_RUNS.system);
  const nodeRuns = configuredRuns(CI_RUNS.nodes);

  before(function () {
    this.timeout(60_000);
    batchReaderRuntimeCode(); // compile once, outside the timed properties
  });

  after(function () {
    report("inference system", stats.system);
    report("node registry", stats.nodes);
    const s = stats.system;
    const n = stats.nodes;
    console.log(
      `      total: ${s.sequences + n.sequences} sequences, ${s.commands + n.commands} commands, ` +
        `${((s.ms + n.ms) / 1000).toFixed(1)} s`,
    );
  });

  it(`requests, answers, refunds, settlement and withdrawals conserve every wei (${systemRuns} sequences)`, async function () {
    this.timeout(Math.max(120_000, systemRuns * 2_000));
    const started = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(systemSequence, runSystemSequence),
        fcParameters<[SysCmd[]]>(systemRuns),
      );
    } finally {
      stats.system.ms += Date.now() - started;
    }
  });

  it(`slashing takes at most stake + unbonding and all of it reaches the slasher (${nodeRuns} sequences)`, async function () {
    this.timeout(Math.max(120_000, nodeRuns * 2_000));
    const started = Date.now();
    try {
      await fc.assert(fc.asyncProperty(nodeSequence, runNodeSequence), fcParameters<[NodeCmd[]]>(nodeRuns));
    } finally {
      stats.nodes.ms += Date.now() - started;
    }
  });
});
