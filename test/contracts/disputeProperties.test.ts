/**
 * Property tests of disputes and redundant requests: fast-check drives the real system contracts
 * (hub, settlement, node registry) through random call sequences of 5 to 25 steps, keeps an
 * off-chain model of every request, answer, dispute, vote, stake and credit, and predicts each
 * call exactly: the events it emits, in order (committees included: the model draws them from
 * the same block hash as Settlement does), or the custom error it reverts with, in which case
 * nothing may change.
 *
 * The world: the deployed system with one model, three inference nodes, five verifiers (two of
 * them also inference nodes), and a CountingConsumer that counts the callbacks it receives.
 * Steps: requests (single, or redundant with k = 2..4; from an EOA or the consumer); answers
 * (right, wrong, a third output, an error) by distinct nodes; challenges claiming a right, wrong
 * or third hash, and misuse (wrong bond, non-verifier, late, double, same or zero hash);
 * committee draws; votes by committee members for random hashes (and by outsiders, twice, too
 * late); resolutions (early too); finalize and finalizeRedundant (with the agreeing nodes read
 * from the chain, and with wrong lists); slashDissenter; refunds; withdrawals by anyone;
 * verifiers changing roles, unbonding, withdrawing and adding stake, so that committees meet
 * inactive and jailed verifiers; time passing. A step with nothing to act on runs the step that
 * would give it something (a vote becomes a challenge, a challenge an answer, an answer a
 * request): random order alone seldom fits request, answer, challenge and votes in one window.
 *
 * Checked after every step:
 *   1. Value: settlement balance == totalCredits() + bondsHeld(), and bondsHeld() is the bonds of
 *      open disputes; hub balance == fees of Pending, Fulfilled and Challenged requests; registry
 *      balance == stake + unbonding of every node; hub + settlement + registry + everything
 *      withdrawn == everything paid in (fees, bonds, stakes), to the wei.
 *   2. Nobody is slashed beyond stake: every NodeSlashed takes at most what it asked for and at
 *      most the node's stake + unbonding just before; nodeInfo of every node equals the model.
 *   3. Nobody is owed what they were not credited: credits(account) equals the model for every
 *      account, totalCredits() is their sum, and a withdrawal pays exactly the credit.
 *   4. Everything ends at most once: a terminal request state never changes; a request records
 *      at most one result (InferenceFulfilled) and its consumer hears it at most once (and an
 *      overturn at most once); a request is refunded or paid out at most once; a dissenter is
 *      slashed at most once per request.
 * Also equal to the model: request states and commitments, agreements and answers, disputes
 * (committee, votes, verdict), the verifier set, callback counts.
 * At the end of each sequence: time passes every voting period and every open dispute is
 * resolved, so each ends with a verdict other than Pending and bondsHeld() is 0; every unslashed
 * dissenter is slashed, and slashing any dissenter again reverts; the invariants hold throughout.
 *
 * How many sequences run: GRADNET_PROPERTY_RUNS=N, or =x4 for a factor of the default. A failure
 * prints fast-check's seed and path and the steps that ran; replay it with
 *   GRADNET_PROPERTY_SEED=<seed> GRADNET_PROPERTY_PATH=<path> npx hardhat test test/contracts/disputeProperties.test.ts
 */
import { expect } from "chai";
import fc from "fast-check";
import hre from "hardhat";
import {
  getAddress,
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
import type { CountingConsumer } from "../../typechain-types";
import { DEVNET_PARAMS } from "../../deploy/config";
import {
  CALLBACK,
  deployFixture,
  encodeTensors,
  floatTensor,
  MODEL_FEE,
  MODEL_ID,
  ROLE,
  SAMPLE_OUTPUT,
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
  fmt,
  fulfillmentHash,
  GAS,
  holds,
  installBatchReader,
  latestTimestamp,
  mineAt,
  newStats,
  observed,
  provider,
  rarely,
  reached,
  readAll,
  report,
  requestHash,
  requestTuple,
  same,
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

/** Sequences in CI: about a minute on two cores. */
const CI_RUNS = 150;
const SEQUENCE = { minLength: 5, maxLength: 25 } as const;

const P = DEVNET_PARAMS.disputes;
const STAKE = DEVNET_PARAMS.stake;
const BPS = 10_000n;
const CHALLENGE_WINDOW = DEVNET_PARAMS.settlement.challengeWindow;
const VOTING_PERIOD = P.votingPeriod;
const REQUEST_TIMEOUT = DEVNET_PARAMS.hub.requestTimeout;
const UNBONDING_DELAY = STAKE.unbondingDelay;
const JAIL_PERIOD = STAKE.jailPeriod;
const ETH = 10n ** 18n;
/** Enough for CountingConsumer to count a callback. */
const CONSUMER_GAS = 100_000;
/** A callback gas limit an EOA may ask for: the hub finds no code and records NoCode. */
const EOA_GAS = 50_000;
const MAX_SWEEP = 64;
const BOTH_ROLES = ROLE.INFERENCE | ROLE.VERIFIER;
const VERDICT = { Pending: 0, AccusedRight: 1, AccusedWrong: 2, NoMajority: 3 } as const;
const VERDICT_NAME = ["Pending", "AccusedRight", "AccusedWrong", "NoMajority"];
const TERMINAL: readonly number[] = [STATE.Failed, STATE.Refunded, STATE.Finalized, STATE.Overturned];
/** The states whose fee the hub holds, and those whose fee went back to the requester. */
const ESCROWED: readonly number[] = [STATE.Pending, STATE.Fulfilled, STATE.Challenged];
const REFUNDED: readonly number[] = [STATE.Failed, STATE.Refunded, STATE.Overturned];

/** What a node can answer. "right" is what an honest node computes for every request here. */
type Output = "right" | "wrong" | "third" | "error";
interface AnswerData {
  status: number;
  output: string;
  outputHash: string;
}

const success = (output: string): AnswerData => ({
  status: STATUS.Success,
  output,
  outputHash: keccak256(output),
});
const ERROR_REASON = hexlify(toUtf8Bytes("input does not fit the schema"));
const OUTPUTS: Record<Output, AnswerData> = {
  right: success(SAMPLE_OUTPUT),
  wrong: success(encodeTensors([floatTensor("probabilities", [1n, 2n, 3n])])),
  third: success(encodeTensors([floatTensor("probabilities", [7n, 7n, 7n])])),
  error: { status: STATUS.InvalidInput, output: ERROR_REASON, outputHash: keccak256(ERROR_REASON) },
};
/** Hashes a challenger claims or a voter votes for. */
type HashChoice = "right" | "wrong" | "third";

/** The hash a challenger claims: `choice`, or another one when that is the accused hash. */
function claimedHash(choice: HashChoice, accusedHash: string): string {
  const order: HashChoice[] = ["right", "wrong", "third", "right"];
  const first = OUTPUTS[choice].outputHash;
  return first !== accusedHash ? first : OUTPUTS[order[order.indexOf(choice) + 1]!].outputHash;
}

/** The hub's key for an answer: answerKey(status, outputHash). */
function answerKeyOf(d: AnswerData): string {
  return keccak256(coder.encode(["uint8", "bytes32"], [d.status, d.outputHash]));
}

const stats = newStats();

// ======================================================================================= world

interface DisputeWorld extends Fixture {
  node3: Signer;
  verifiers: Signer[];
  consumer: CountingConsumer;
}

/** deployFixture (through its own snapshot), a third inference node, five verifiers, a consumer. */
async function disputeFixture(): Promise<DisputeWorld> {
  const f = await loadFixture(deployFixture);
  const node3 = f.signers[12]!;
  const verifiers = f.signers.slice(7, 12);
  await (await f.nodes.connect(node3).register(ROLE.INFERENCE, { value: STAKE.minStakeInference })).wait();
  // Three verifiers at the minimum stake (one missed vote makes them inactive, so committees
  // shrink), and two with more stake that also answer, so redundant requests find enough nodes.
  const roles = [ROLE.VERIFIER, ROLE.VERIFIER, ROLE.VERIFIER, BOTH_ROLES, BOTH_ROLES];
  const stakes = [ETH, ETH, ETH, 2n * ETH, 2n * ETH];
  for (const [i, v] of verifiers.entries()) {
    await (await f.nodes.connect(v).register(roles[i]!, { value: stakes[i]! })).wait();
  }
  const factory = await hre.ethers.getContractFactory("CountingConsumer", f.owner);
  const consumer = (await factory.deploy(f.addresses.inferenceHub)) as unknown as CountingConsumer;
  await consumer.waitForDeployment();
  await installBatchReader();
  return { ...f, node3, verifiers, consumer };
}

// ================================================================================= the model

interface NodeModel {
  signer: Signer;
  address: string; // checksummed, as every address in the model
  stake: bigint;
  roles: number;
  jailedUntil: bigint;
  unbonding: bigint;
  unbondingReleaseAt: bigint;
  registeredAt: bigint;
}

interface Req {
  request: RequestStruct;
  hash: string; // requestHash(request)
  k: number;
  viaConsumer: boolean;
  state: number;
  fulfillment?: FulfillmentStruct;
  /** Redundant requests: each node's answer key, the count per key, where agreement stands. */
  answers: Map<string, string>;
  tally: Map<string, number>;
  agreementHash: string;
  agreedKey: string;
  agreeing: number;
  dissentersSlashed: Set<string>;
  disputeId: number;
  /** Whether a result (success or error) was recorded; what the consumer must have heard. */
  recorded: boolean;
  callbacks: { answers: number; overturns: number };
  /** Counted from the chain's own events, independently of the model. */
  fulfilledEvents: number;
  refunds: number;
  releases: number;
  dissenterEvents: Map<string, number>;
  /** The state read after the previous step. */
  observed: number;
}

interface Disp {
  id: number;
  req: Req;
  fulfillment: FulfillmentStruct;
  challenger: string;
  openedAt: number;
  drawBlock: number;
  votingEndsAt: number;
  bond: bigint;
  claimedHash: string;
  committee: string[];
  votes: Map<string, string>;
  verdict: number;
  majority: string;
}

interface RequestObservation {
  state: number;
  slot: string;
  disputeId: bigint;
  agreement: bigint[];
  answers: bigint[];
  callbacks: bigint[];
}

interface Observation {
  balances: { hub: bigint; settlement: bigint; registry: bigint };
  totalCredits: bigint;
  bondsHeld: bigint;
  disputeCount: bigint;
  requestCount: bigint;
  verifierCount: bigint;
  credits: bigint[];
  nodeInfos: string[];
  verifiers: string[];
  requests: RequestObservation[];
  disputes: string[];
  votes: string[];
}

interface Ctx extends ModelClock<Observation> {
  w: DisputeWorld;
  block: number; // number of the latest block
  nodes: NodeModel[]; // node1, node2, node3, then the five verifiers
  verifierSet: string[]; // NodeRegistry's verifier set, in its order
  requests: Req[];
  disputes: Disp[];
  credits: Map<string, bigint>;
  accounts: string[]; // every address that can hold credit
  signers: Map<string, Signer>; // by address
  addr: Map<Signer, string>;
  withdrawers: Signer[];
  payers: Signer[];
  paidIn: bigint; // stakes, fees and bonds
  withdrawn: bigint; // from the settlement and the registry
  hubAt: string;
  settlementAt: string;
  registryAt: string;
  consumerAt: string;
  treasury: string;
  modelOwner: string;
  interfaces: Map<string, Interface>;
}

/** Contract addresses as keys of `Ctx.interfaces`. */
const lower = (a: string) => a.toLowerCase();

function nodeOf(ctx: Ctx, address: string): NodeModel | undefined {
  return ctx.nodes.find((n) => n.address === address);
}

function minStakeOf(role: number): bigint {
  if (role === ROLE.INFERENCE) return STAKE.minStakeInference;
  if (role === ROLE.VERIFIER) return STAKE.minStakeVerifier;
  return STAKE.minStakeData;
}

/** NodeRegistry.isActive in a block at `ts`. */
function isActive(n: NodeModel | undefined, role: number, ts: number): boolean {
  return !!n && (n.roles & role) !== 0 && n.jailedUntil <= BigInt(ts) && n.stake >= minStakeOf(role);
}

function credit(ctx: Ctx, account: string, amount: bigint): void {
  holds(ctx.accounts.includes(account), `harness: credited account ${account} is not watched`);
  ctx.credits.set(account, (ctx.credits.get(account) ?? 0n) + amount);
}

function creditOf(ctx: Ctx, account: string): bigint {
  return ctx.credits.get(account) ?? 0n;
}

/** The fulfilment to pass for `t`: its own, or a made-up one when it has none. */
function fulfillmentFor(ctx: Ctx, t: Req, fulfilledAt: bigint): FulfillmentStruct {
  return t.fulfillment ?? { node: ctx.nodes[0]!.address, outputHash: OUTPUTS.wrong.outputHash, fulfilledAt };
}

/** NodeRegistry.slash(node, amount, jail) in a block at `ts`: bonded stake first, then unbonding. */
function slashOutcome(n: NodeModel, amount: bigint, jail: boolean, ts: number) {
  const available = n.stake + n.unbonding;
  const slashed = amount < available ? amount : available;
  const jailEnd = BigInt(ts + JAIL_PERIOD);
  const jailedUntil = jail && jailEnd > n.jailedUntil ? jailEnd : n.jailedUntil;
  return {
    slashed,
    event: ev("NodeSlashed", n.address, amount, slashed, jailedUntil),
    apply: () => {
      const fromBonded = slashed <= n.stake ? slashed : n.stake;
      n.stake -= fromBonded;
      n.unbonding -= slashed - fromBonded;
      n.jailedUntil = jailedUntil;
      reached(stats, slashed === available ? "slashed all the stake" : "slashed part of the stake");
    },
  };
}

/** The callback the hub makes to `t`'s requester, and what it records about it. */
function callbackOf(t: Req): number {
  if (t.request.callbackGasLimit === 0n) return CALLBACK.NotRequested;
  return t.viaConsumer ? CALLBACK.Success : CALLBACK.NoCode;
}

/** The hub refunding `t`'s fee for `reason`: its events and the requester's credit. */
function refundOutcome(ctx: Ctx, t: Req, reason: number, events: string[], effects: Effect[]): void {
  const r = t.request;
  events.push(ev("RequestRefunded", r.requestId, r.requester, r.fee, reason));
  events.push(ev("RefundCredited", r.requestId, r.requester, r.fee));
  effects.push(() => {
    t.state = reason;
    credit(ctx, r.requester, r.fee);
  });
}

/** Recording `node`'s answer as `t`'s result (InferenceHub._record) in a block at `ts`. */
function recordOutcome(
  ctx: Ctx,
  t: Req,
  node: string,
  d: AnswerData,
  ts: number,
  events: string[],
  effects: Effect[],
): void {
  const r = t.request;
  const failed = d.status > STATUS.SuccessOffchain;
  if (failed) refundOutcome(ctx, t, STATE.Failed, events, effects);
  const cb = callbackOf(t);
  events.push(ev("InferenceFulfilled", r.requestId, node, d.status, d.outputHash, ts, cb, d.output));
  effects.push(() => {
    if (!failed) {
      t.state = STATE.Fulfilled;
      t.fulfillment = { node, outputHash: d.outputHash, fulfilledAt: BigInt(ts) };
    }
    t.recorded = true;
    if (cb === CALLBACK.Success) t.callbacks.answers++;
    reached(stats, `${t.k > 1 ? "agreed" : "answered"} ${failed ? "error" : "result"}`);
  });
}

/**
 * Settlement._sample: up to committeeSize distinct active verifiers other than the accused, from
 * random probes, then a sweep from a random start. `seedHash` is the draw block's hash.
 */
function sampleCommittee(ctx: Ctx, seedHash: string, disputeId: number, accused: string, ts: number) {
  const set = ctx.verifierSet;
  const n = BigInt(set.length);
  const picked: string[] = [];
  if (n === 0n) return picked;
  const seed = BigInt(keccak256(coder.encode(["bytes32", "uint256"], [seedHash, disputeId])));
  const consider = (index: bigint) => {
    const c = set[Number(index % n)]!;
    if (c !== accused && !picked.includes(c) && isActive(nodeOf(ctx, c), ROLE.VERIFIER, ts)) picked.push(c);
  };
  for (let j = 0; j < P.committeeSize * 4 && picked.length < P.committeeSize; j++) {
    consider(BigInt(keccak256(coder.encode(["uint256", "uint256"], [seed, j]))));
  }
  const sweep = set.length < MAX_SWEEP ? set.length : MAX_SWEEP;
  for (let i = 0; i < sweep && picked.length < P.committeeSize; i++) consider(seed + BigInt(i));
  return picked;
}

/** The committee a draw in the next block would pick (the draw block must be in the past). */
async function nextCommittee(ctx: Ctx, d: Disp): Promise<string[]> {
  const number = ctx.block + 1;
  // Only the last 256 block hashes are readable; past that the latest one stands in.
  const seedBlock = number - d.drawBlock > 256 ? number - 1 : d.drawBlock;
  const block = (await provider.request({
    method: "eth_getBlockByNumber",
    params: [toBeHex(seedBlock), false],
  })) as { hash: string };
  return sampleCommittee(ctx, block.hash, d.id, d.fulfillment.node, ctx.now + 1);
}

/**
 * Drawing `d`'s committee in the next block, as drawCommittee and a first vote do: an error in
 * the order Settlement._draw checks, or the committee with its event and effect.
 */
async function drawOutcome(
  ctx: Ctx,
  d: Disp,
): Promise<{ error: ExpectedError } | { committee: string[]; event: string; apply: Effect }> {
  const s = ctx.w.settlement;
  if (ctx.block + 1 <= d.drawBlock) return err(s, "Settlement__CommitteeNotDrawable", d.id, d.drawBlock);
  if (ctx.now + 1 > d.votingEndsAt) return err(s, "Settlement__VotingClosed", d.id, d.votingEndsAt);
  const committee = await nextCommittee(ctx, d);
  if (committee.length === 0) return err(s, "Settlement__NoEligibleVerifiers", d.id);
  const eligible = ctx.verifierSet.filter(
    (v) => v !== d.fulfillment.node && isActive(nodeOf(ctx, v), ROLE.VERIFIER, ctx.now + 1),
  );
  holds(
    committee.length === Math.min(P.committeeSize, eligible.length),
    `dispute ${d.id}: a committee of ${committee.length} from ${eligible.length} eligible verifiers`,
  );
  return {
    committee,
    event: ev("CommitteeDrawn", d.id, committee),
    apply: () => {
      d.committee = committee;
      const passedOver = ctx.verifierSet.filter((v) => v !== d.fulfillment.node).length - eligible.length;
      reached(stats, `committee of ${committee.length}, ${passedOver} inactive verifiers passed over`);
    },
  };
}

/** Settlement._resolve and the hub's endDispute, in a block at `ts`. */
function resolveOutcome(ctx: Ctx, d: Disp, ts: number): { events: string[]; effects: Effect[] } {
  const t = d.req;
  const r = t.request;
  const votes = d.committee.map((m) => d.votes.get(m) ?? ZeroHash);
  const cast = votes.filter((v) => v !== ZeroHash).length;
  const count = (h: string) => votes.filter((v) => v === h).length;
  const majority = votes.find((v) => v !== ZeroHash && count(v) * 2 > cast) ?? ZeroHash;
  const accusedHash = d.fulfillment.outputHash;
  const verdict =
    majority === ZeroHash
      ? VERDICT.NoMajority
      : majority === accusedHash
        ? VERDICT.AccusedRight
        : VERDICT.AccusedWrong;
  const events: string[] = [];
  const effects: Effect[] = [];
  let slashed = 0n;
  let challengerPaid = 0n;
  let pot = 0n;
  if (verdict === VERDICT.AccusedWrong) {
    const s = slashOutcome(nodeOf(ctx, d.fulfillment.node)!, P.slashAmount, true, ts);
    events.push(s.event);
    effects.push(s.apply);
    slashed = s.slashed;
    if (majority === d.claimedHash) challengerPaid = (slashed * BigInt(P.challengerRewardBps)) / BPS;
    pot = slashed - challengerPaid;
  }
  if (verdict === VERDICT.NoMajority || majority === d.claimedHash) challengerPaid += d.bond;
  else pot += d.bond;
  d.committee.forEach((m, i) => {
    if (votes[i] !== ZeroHash || P.absentPenalty === 0n) return;
    const s = slashOutcome(nodeOf(ctx, m)!, P.absentPenalty, false, ts);
    events.push(s.event, ev("VoterPenalized", d.id, m, s.slashed));
    effects.push(s.apply);
    pot += s.slashed;
  });
  const winners = majority === ZeroHash ? [] : d.committee.filter((_, i) => votes[i] === majority);
  const each = winners.length === 0 ? 0n : (pot * BigInt(P.voterRewardBps)) / BPS / BigInt(winners.length);
  const votersPaid = each * BigInt(winners.length);
  const treasuryPaid = pot - votersPaid;
  events.push(
    ev("DisputeResolved", d.id, verdict, majority, slashed, challengerPaid, votersPaid, treasuryPaid),
  );
  effects.push(() => {
    for (const m of winners) credit(ctx, m, each);
    credit(ctx, d.challenger, challengerPaid);
    credit(ctx, ctx.treasury, treasuryPaid);
    d.verdict = verdict;
    d.majority = majority;
    reached(stats, `verdict ${VERDICT_NAME[verdict]} (${cast} of ${d.committee.length} voted)`);
  });
  if (verdict === VERDICT.AccusedWrong) {
    refundOutcome(ctx, t, STATE.Overturned, events, effects);
    const cb = callbackOf(t);
    events.push(ev("InferenceOverturned", r.requestId, d.fulfillment.node, accusedHash, majority, cb));
    effects.push(() => {
      if (cb === CALLBACK.Success) t.callbacks.overturns++;
    });
  } else {
    events.push(ev("ChallengeCleared", r.requestId));
    effects.push(() => {
      t.state = STATE.Fulfilled;
    });
  }
  return { events, effects };
}

// ========================================================================= chain observation

async function observe(ctx: Ctx): Promise<Observation> {
  const { w } = ctx;
  const hub = w.hub.interface as unknown as Interface;
  const settlement = w.settlement.interface as unknown as Interface;
  const registry = w.nodes.interface as unknown as Interface;
  const consumer = w.consumer.interface as unknown as Interface;
  const [hubAt, sAt, rAt] = [ctx.hubAt, ctx.settlementAt, ctx.registryAt];
  const perRequest = (t: Req) => [
    view(hub, hubAt, "requestState", t.request.requestId),
    view(hub, hubAt, "commitmentOf", t.request.requestId),
    view(settlement, sAt, "disputeOf", t.request.requestId),
    ...(t.k > 1
      ? [
          view(hub, hubAt, "agreementOf", t.request.requestId),
          ...ctx.nodes.map((n) => view(hub, hubAt, "answerOf", t.request.requestId, n.address)),
        ]
      : []),
    ...(t.viaConsumer
      ? [
          view(consumer, ctx.consumerAt, "answers", t.request.requestId),
          view(consumer, ctx.consumerAt, "overturns", t.request.requestId),
        ]
      : []),
  ];
  const values = await readAll([
    { to: hubAt, data: "0x" },
    { to: sAt, data: "0x" },
    { to: rAt, data: "0x" },
    view(settlement, sAt, "totalCredits"),
    view(settlement, sAt, "bondsHeld"),
    view(settlement, sAt, "disputeCount"),
    view(hub, hubAt, "requestCount"),
    view(registry, rAt, "verifierCount"),
    ...ctx.accounts.map((a) => view(settlement, sAt, "credits", a)),
    ...ctx.nodes.map((n) => view(registry, rAt, "nodeInfo", n.address)),
    ...ctx.verifierSet.map((_, i) => view(registry, rAt, "verifierAt", i)),
    ...ctx.requests.flatMap(perRequest),
    ...ctx.disputes.flatMap((d) => [
      view(settlement, sAt, "dispute", d.id),
      ...d.committee.map((m) => view(settlement, sAt, "voteOf", d.id, m)),
    ]),
  ]);
  let at = 0;
  const next = () => values[at++]!;
  const word = () => next()[0]!;
  const words = (n: number) => Array.from({ length: n }, word);
  const hex = (x: bigint) => toBeHex(x, 32);
  const o: Observation = {
    balances: { hub: word(), settlement: word(), registry: word() },
    totalCredits: word(),
    bondsHeld: word(),
    disputeCount: word(),
    requestCount: word(),
    verifierCount: word(),
    credits: words(ctx.accounts.length),
    nodeInfos: ctx.nodes.map(() => fmt(next())),
    verifiers: ctx.verifierSet.map(() => getAddress(toBeHex(word(), 20))),
    requests: ctx.requests.map((t) => ({
      state: Number(word()),
      slot: hex(word()),
      disputeId: word(),
      agreement: t.k > 1 ? next() : [],
      answers: t.k > 1 ? words(ctx.nodes.length) : [],
      callbacks: t.viaConsumer ? words(2) : [],
    })),
    disputes: [],
    votes: [],
  };
  for (const d of ctx.disputes) {
    const raw =
      "0x" +
      next()
        .map(hex)
        .map((h) => h.slice(2))
        .join("");
    o.disputes.push(fmt([...settlement.decodeFunctionResult("dispute", raw)[0]]));
    o.votes.push(fmt(d.committee.map(() => hex(word()))));
  }
  return o;
}

/** The dispute struct the model expects, formatted as the observation formats the chain's. */
function expectedDispute(ctx: Ctx, d: Disp): string {
  return fmt([
    ctx.hubAt,
    d.openedAt,
    d.drawBlock,
    d.challenger,
    d.votingEndsAt,
    d.fulfillment.node,
    d.bond,
    d.req.request.requestId,
    d.fulfillment.outputHash,
    d.claimedHash,
    d.majority,
    d.verdict,
    d.votes.size,
    d.committee,
  ]);
}

async function check(ctx: Ctx): Promise<void> {
  const o = await observe(ctx);
  observed(ctx, o);
  const { hub, settlement, registry } = o.balances;

  // 1. Value.
  const open = ctx.disputes.filter((d) => d.verdict === VERDICT.Pending);
  same(settlement, o.totalCredits + o.bondsHeld, "1: settlement balance == totalCredits() + bondsHeld()");
  same(
    o.bondsHeld,
    open.reduce((sum, d) => sum + d.bond, 0n),
    "1: bondsHeld() == bonds of open disputes",
  );
  const escrowed = ctx.requests
    .filter((t) => ESCROWED.includes(t.state))
    .reduce((sum, t) => sum + t.request.fee, 0n);
  same(hub, escrowed, "1: hub balance == fees of Pending, Fulfilled and Challenged requests");
  const staked = ctx.nodes.reduce((sum, n) => sum + n.stake + n.unbonding, 0n);
  same(registry, staked, "1: registry balance == stake + unbonding of every node");
  same(hub + settlement + registry + ctx.withdrawn, ctx.paidIn, "1: value conserved");

  // 2. Stakes (slashes are checked against the stake before them as each receipt arrives).
  ctx.nodes.forEach((n, i) => {
    const expected = [n.stake, n.roles, n.jailedUntil, n.unbonding, n.unbondingReleaseAt, n.registeredAt];
    same(o.nodeInfos[i], fmt(expected), `2: nodeInfo(${n.address})`);
  });
  same(o.verifierCount, BigInt(ctx.verifierSet.length), "verifierCount()");
  same(show(o.verifiers), show(ctx.verifierSet), "the verifier set, in order");

  // 3. Credits.
  ctx.accounts.forEach((a, i) => same(o.credits[i], creditOf(ctx, a), `3: credits(${a})`));
  const owed = ctx.accounts.reduce((sum, a) => sum + creditOf(ctx, a), 0n);
  same(o.totalCredits, owed, "3: totalCredits() == sum of credits(account)");

  // 4. Requests end at most once; results, refunds, payouts and dissenter slashes happen at most once.
  same(o.requestCount, BigInt(ctx.requests.length), "requestCount()");
  ctx.requests.forEach((t, i) => {
    const id = t.request.requestId;
    const c = o.requests[i]!;
    if (TERMINAL.includes(t.observed)) same(c.state, t.observed, `4: request ${id} left its terminal state`);
    t.observed = c.state;
    same(c.state, t.state, `requestState(${id})`);
    const commitment = t.fulfillment ? fulfillmentHash(t.request, t.fulfillment, t.hash) : t.hash;
    same(c.slot, commitmentSlot(t.state, commitment), `commitmentOf(${id})`);
    same(c.disputeId, BigInt(t.disputeId), `disputeOf(${id})`);
    holds(t.fulfilledEvents <= 1, `4: request ${id} recorded ${t.fulfilledEvents} results`);
    same(t.fulfilledEvents, t.recorded ? 1 : 0, `4: InferenceFulfilled events of request ${id}`);
    holds(t.refunds + t.releases <= 1, `4: request ${id} was refunded and paid out`);
    const refunded = REFUNDED.includes(t.state);
    same(t.refunds, refunded ? 1 : 0, `4: refunds of request ${id}`);
    same(t.releases, t.state === STATE.Finalized ? 1 : 0, `4: payouts of request ${id}`);
    for (const [node, n] of t.dissenterEvents) {
      holds(n <= 1, `4: dissenter ${node} slashed ${n} times for request ${id}`);
      holds(t.dissentersSlashed.has(node), `4: ${node} slashed as a dissenter of ${id} unexpectedly`);
    }
    if (t.k > 1) {
      const a = [t.agreementHash, t.agreedKey, t.answers.size, t.agreeing];
      same(fmt(c.agreement.map((x, j) => (j < 2 ? toBeHex(x, 32) : x))), fmt(a), `agreementOf(${id})`);
      const answers = ctx.nodes.map((n) => t.answers.get(n.address) ?? ZeroHash);
      same(fmt(c.answers.map((x) => toBeHex(x, 32))), fmt(answers), `answerOf(${id}, each node)`);
    }
    if (t.viaConsumer) {
      const [answers, overturns] = c.callbacks as [bigint, bigint];
      holds(answers <= 1n && overturns <= 1n, `4: the consumer heard request ${id} more than once`);
      same(fmt(c.callbacks), fmt([t.callbacks.answers, t.callbacks.overturns]), `callbacks of ${id}`);
    }
  });

  // Disputes.
  same(o.disputeCount, BigInt(ctx.disputes.length), "disputeCount()");
  ctx.disputes.forEach((d, i) => {
    same(o.disputes[i], expectedDispute(ctx, d), `dispute(${d.id})`);
    same(o.votes[i], fmt(d.committee.map((m) => d.votes.get(m) ?? ZeroHash)), `voteOf(${d.id}, committee)`);
  });
}

/** Send in the next block; check the outcome, count the chain's events, apply the effects. */
async function transact(
  ctx: Ctx,
  send: () => Promise<ContractTransactionResponse>,
  outcome: Outcome,
): Promise<ContractTransactionReceipt | null> {
  const receipt = await sendNext(ctx, send, ctx.interfaces, outcome, stats);
  ctx.block++;
  if (!receipt || "error" in outcome) return receipt;
  // 2 and 4 from the chain's own events, before the model moves.
  const available = new Map(ctx.nodes.map((n) => [n.address, n.stake + n.unbonding]));
  for (const log of receipt!.logs) {
    const parsed = ctx.interfaces.get(lower(log.address))?.parseLog(log);
    if (!parsed) continue;
    const a = parsed.args;
    const req = () => ctx.requests[Number(a[0] as bigint) - 1]!;
    switch (parsed.name) {
      case "InferenceFulfilled":
        req().fulfilledEvents++;
        break;
      case "RequestRefunded":
        req().refunds++;
        break;
      case "RequestReleased":
        req().releases++;
        break;
      case "DissenterSlashed": {
        const m = req().dissenterEvents;
        m.set(a[1] as string, (m.get(a[1] as string) ?? 0) + 1);
        break;
      }
      case "NodeSlashed": {
        const node = a[0] as string;
        const [requested, slashed] = [a[1] as bigint, a[2] as bigint];
        const before = available.get(node);
        holds(before !== undefined, `2: slashed ${node}, which is no node`);
        holds(slashed <= requested, `2: ${node} slashed ${slashed}, more than the ${requested} asked`);
        holds(slashed <= before!, `2: ${node} slashed ${slashed}, more than its stake + unbonding ${before}`);
        available.set(node, before! - slashed);
        break;
      }
    }
  }
  for (const apply of outcome.effects) apply();
  return receipt;
}

/** Let `seconds` pass: mine an empty block that much later. */
async function advance(ctx: Ctx, seconds: number): Promise<void> {
  if (seconds <= 0) return;
  ctx.now += seconds;
  ctx.block++;
  await mineAt(ctx.now);
}

/** Make the next block's timestamp `ts` (when that is still ahead). */
async function advanceToNext(ctx: Ctx, ts: number): Promise<void> {
  await advance(ctx, ts - 1 - ctx.now);
}

// ================================================================================== commands

type Claim = HashChoice | "same" | "zero";
type BondChoice = "exact" | "none" | "less" | "more";
type NodeList = "agreeing" | "drop" | "duplicate" | "extra" | "empty";

/** `pick`/`node`/... select among candidates modulo their number; the flags widen the choice. */
type Cmd =
  | { kind: "request"; payer: number; viaConsumer: boolean; k: number; extra: bigint; eoaGas: boolean }
  | { kind: "answer"; pick: number; anyRequest: boolean; node: number; anyNode: boolean; output: Output }
  | {
      kind: "challenge";
      pick: number;
      target: "open" | "fulfilled" | "any";
      challenger: number;
      anyone: boolean;
      claim: Claim;
      bond: BondChoice;
    }
  | { kind: "draw"; pick: number; anyDispute: boolean }
  | {
      kind: "vote";
      pick: number;
      anyDispute: boolean;
      voter: "fresh" | "any" | "outsider";
      member: number;
      hash: HashChoice | "zero";
    }
  | { kind: "resolve"; pick: number; target: "open" | "any" | "unchallenged" | "asSource"; wait: boolean }
  | { kind: "finalize"; pick: number; anyRequest: boolean; wait: boolean }
  | {
      kind: "finalizeRedundant";
      pick: number;
      anyRequest: boolean;
      list: NodeList;
      rotate: number;
      wait: boolean;
    }
  | { kind: "slashDissenter"; pick: number; anyRequest: boolean; node: number; anyNode: boolean }
  | { kind: "refund"; pick: number; wait: boolean }
  | { kind: "withdraw"; who: number; anyAccount: boolean; to: number }
  | { kind: "setRoles"; node: number; anyNode: boolean; roles: number }
  | { kind: "unbond"; node: number; anyNode: boolean; amount: "one" | "half" | "all" | "more" | "zero" }
  | { kind: "nodeWithdraw"; node: number; anyNode: boolean; wait: boolean }
  | { kind: "addStake"; node: number; value: bigint }
  | { kind: "advance"; seconds: number }
  | { kind: "advanceTo"; to: "votingEnd" | "windowEnd" | "deadline"; pick: number; offset: number };

const pick = fc.nat({ max: 1_000 });
const nodeIndex = fc.nat({ max: 7 });
const hashChoice = fc.oneof(
  weighted(5, fc.constant("right" as const)),
  weighted(4, fc.constant("wrong" as const)),
  weighted(2, fc.constant("third" as const)),
);
/** Usually 0 (act now); sometimes wait until the call can succeed. */
const waits = fc.oneof(weighted(3, fc.constant(false)), weighted(2, fc.constant(true)));

const requestCommand: fc.Arbitrary<Cmd> = command("request", {
  payer: fc.nat({ max: 1 }),
  viaConsumer: fc.boolean(),
  k: fc.oneof(weighted(3, fc.constant(1)), weighted(2, fc.integer({ min: 2, max: 4 }))),
  extra: fc.oneof(weighted(3, fc.constant(0n)), weighted(1, fc.bigInt({ min: 1n, max: MODEL_FEE }))),
  eoaGas: fc.boolean(),
});

const disputeCommand: fc.Arbitrary<Cmd> = fc.oneof(
  weighted(6, requestCommand),
  weighted(
    14,
    command("answer", {
      pick,
      anyRequest: rarely,
      node: nodeIndex,
      anyNode: rarely,
      output: fc.oneof(
        weighted(5, fc.constant("right" as const)),
        weighted(4, fc.constant("wrong" as const)),
        weighted(1, fc.constant("third" as const)),
        weighted(1, fc.constant("error" as const)),
      ),
    }),
  ),
  weighted(
    9,
    command("challenge", {
      pick,
      target: fc.oneof(
        weighted(8, fc.constant("open" as const)),
        weighted(2, fc.constant("fulfilled" as const)),
        weighted(1, fc.constant("any" as const)),
      ),
      challenger: nodeIndex,
      anyone: fc.oneof(weighted(12, fc.constant(false)), weighted(1, fc.constant(true))),
      claim: fc.oneof(
        weighted(12, hashChoice),
        weighted(1, fc.constant("same" as const)),
        weighted(1, fc.constant("zero" as const)),
      ),
      bond: fc.oneof(
        weighted(15, fc.constant("exact" as const)),
        weighted(1, fc.constantFrom("none" as const, "less" as const, "more" as const)),
      ),
    }),
  ),
  weighted(4, command("draw", { pick, anyDispute: rarely })),
  weighted(
    28,
    command("vote", {
      pick,
      anyDispute: fc.oneof(weighted(12, fc.constant(false)), weighted(1, fc.constant(true))),
      voter: fc.oneof(
        weighted(10, fc.constant("fresh" as const)),
        weighted(1, fc.constant("any" as const)),
        weighted(1, fc.constant("outsider" as const)),
      ),
      member: fc.nat({ max: 14 }),
      hash: fc.oneof(weighted(15, hashChoice), weighted(1, fc.constant("zero" as const))),
    }),
  ),
  weighted(
    5,
    command("resolve", {
      pick,
      target: fc.oneof(
        weighted(10, fc.constant("open" as const)),
        weighted(1, fc.constantFrom("any" as const, "unchallenged" as const, "asSource" as const)),
      ),
      wait: waits,
    }),
  ),
  weighted(4, command("finalize", { pick, anyRequest: rarely, wait: waits })),
  weighted(
    4,
    command("finalizeRedundant", {
      pick,
      anyRequest: rarely,
      list: fc.oneof(
        weighted(8, fc.constant("agreeing" as const)),
        weighted(
          1,
          fc.constantFrom("drop" as const, "duplicate" as const, "extra" as const, "empty" as const),
        ),
      ),
      rotate: fc.nat({ max: 6 }),
      wait: waits,
    }),
  ),
  weighted(5, command("slashDissenter", { pick, anyRequest: rarely, node: nodeIndex, anyNode: rarely })),
  weighted(1, command("refund", { pick, wait: waits })),
  weighted(4, command("withdraw", { who: fc.nat({ max: 12 }), anyAccount: rarely, to: fc.nat({ max: 15 }) })),
  weighted(3, command("setRoles", { node: nodeIndex, anyNode: rarely, roles: fc.constantFrom(0, 1, 2, 3) })),
  weighted(
    3,
    command("unbond", {
      node: nodeIndex,
      anyNode: rarely,
      amount: fc.constantFrom(
        "one" as const,
        "half" as const,
        "all" as const,
        "more" as const,
        "zero" as const,
      ),
    }),
  ),
  weighted(1, command("nodeWithdraw", { node: nodeIndex, anyNode: rarely, wait: waits })),
  weighted(1, command("addStake", { node: nodeIndex, value: fc.bigInt({ min: ETH / 2n, max: 2n * ETH }) })),
  weighted(
    5,
    command("advance", {
      seconds: fc.oneof(
        weighted(4, fc.integer({ min: 1, max: 30 })),
        weighted(2, fc.integer({ min: CHALLENGE_WINDOW - 5, max: CHALLENGE_WINDOW + 5 })),
        weighted(1, fc.integer({ min: 61, max: 600 })),
        weighted(1, fc.integer({ min: REQUEST_TIMEOUT - 5, max: REQUEST_TIMEOUT + 5 })),
        weighted(1, fc.integer({ min: JAIL_PERIOD - 5, max: JAIL_PERIOD + 5 })),
      ),
    }),
  ),
  weighted(
    2,
    command("advanceTo", {
      to: fc.constantFrom("votingEnd" as const, "windowEnd" as const, "deadline" as const),
      pick,
      offset: fc.integer({ min: -1, max: 1 }),
    }),
  ),
);

/** A verifier stepping back: no more roles, or a stake below the minimum. */
const leaveCommand: fc.Arbitrary<Cmd> = fc.oneof(
  command("setRoles", { node: nodeIndex, anyNode: fc.constant(false), roles: fc.constantFrom(0, 1) }),
  command("unbond", { node: nodeIndex, anyNode: fc.constant(false), amount: fc.constant("one" as const) }),
);

/**
 * 5 to 25 steps: one to three requests, so that the rest have work to do; up to two verifiers
 * leaving, so that committees are also drawn from few eligible verifiers (or none); the rest.
 */
const disputeSequence: fc.Arbitrary<Cmd[]> = fc
  .tuple(
    fc.array(requestCommand, { minLength: 1, maxLength: 3 }),
    fc.array(leaveCommand, { maxLength: 2 }),
    fc.array(disputeCommand, {
      minLength: SEQUENCE.minLength - 1,
      maxLength: SEQUENCE.maxLength - 5,
      size: "max",
    }),
  )
  .map(([first, leaving, rest]) => [...first, ...leaving, ...rest]);

// ------------------------------------------------------------------------- command execution

function newRequest(request: RequestStruct, viaConsumer: boolean): Req {
  return {
    request,
    hash: requestHash(request),
    k: Number(request.redundancy),
    viaConsumer,
    state: STATE.Pending,
    answers: new Map(),
    tally: new Map(),
    agreementHash: ZeroHash,
    agreedKey: ZeroHash,
    agreeing: 0,
    dissentersSlashed: new Set(),
    disputeId: 0,
    recorded: false,
    callbacks: { answers: 0, overturns: 0 },
    fulfilledEvents: 0,
    refunds: 0,
    releases: 0,
    dissenterEvents: new Map(),
    observed: STATE.Pending,
  };
}

/** A node's answer to `t` (fulfill): single requests are recorded, redundant ones counted. */
function answerOutcome(ctx: Ctx, t: Req, signer: Signer, output: Output): Outcome {
  const hub = ctx.w.hub;
  const r = t.request;
  const id = r.requestId;
  const sender = addressOf(ctx, signer);
  const ts = ctx.now + 1;
  const d = OUTPUTS[output];
  const activeNode = isActive(nodeOf(ctx, sender), ROLE.INFERENCE, ts);
  const events: string[] = [];
  const effects: Effect[] = [];
  if (t.k === 1) {
    // InferenceHub.fulfill: state, deadline, node, then the record.
    if (t.state !== STATE.Pending) return err(hub, "Hub__WrongState", id, t.state);
    if (BigInt(ts) > r.deadline) return err(hub, "Hub__RequestExpired", id, r.deadline);
    if (!activeNode) return err(hub, "Hub__NotInferenceNode", sender);
    recordOutcome(ctx, t, sender, d, ts, events, effects);
    return { events, effects };
  }
  // InferenceHub._answer, strict.
  if (!activeNode) return err(hub, "Hub__NotInferenceNode", sender);
  if (BigInt(ts) > r.deadline) return err(hub, "Hub__RequestExpired", id, r.deadline);
  if (t.state !== STATE.Pending && !(t.state === STATE.Fulfilled && t.agreedKey !== ZeroHash))
    return err(hub, "Hub__WrongState", id, t.state);
  if (t.answers.has(sender)) return err(hub, "Hub__AlreadyAnswered", id, sender);
  if (t.answers.size >= t.k) return err(hub, "Hub__AnswersComplete", id);
  const key = answerKeyOf(d);
  const answers = t.answers.size + 1;
  const count = (t.tally.get(key) ?? 0) + 1;
  events.push(ev("AnswerSubmitted", id, sender, d.status, d.outputHash, answers));
  effects.push(() => {
    t.answers.set(sender, key);
    t.tally.set(key, count);
  });
  if (t.state === STATE.Fulfilled) {
    effects.push(() => {
      if (key === t.agreedKey) t.agreeing++;
      reached(stats, key === t.agreedKey ? "late agreeing answer" : "late dissenting answer");
    });
  } else if (count > Math.floor(t.k / 2)) {
    effects.push(() => {
      t.agreementHash = t.hash;
      t.agreedKey = key;
      t.agreeing = count;
    });
    recordOutcome(ctx, t, sender, d, ts, events, effects);
  } else if (answers === t.k) {
    events.push(ev("NoAgreement", id, answers));
    refundOutcome(ctx, t, STATE.Refunded, events, effects);
    effects.push(() => reached(stats, "no agreement: refunded"));
  } else {
    effects.push(() => reached(stats, "answer counted"));
  }
  return { events, effects };
}

function addressOf(ctx: Ctx, s: Signer): string {
  return ctx.addr.get(s)!;
}

async function runCommand(ctx: Ctx, cmd: Cmd): Promise<boolean> {
  const { w } = ctx;
  const s = w.settlement;
  const ts = () => ctx.now + 1;
  const openDisputes = () => ctx.disputes.filter((d) => d.verdict === VERDICT.Pending);
  const nodeSigner = (i: number) => ctx.nodes[i % ctx.nodes.length]!.signer;
  const strangers = [w.user, w.other];
  /** Mostly a verifier (committees shrink as verifiers leave), sometimes any node. */
  const verifierMostly = (c: { node: number; anyNode: boolean }) =>
    (c.anyNode ? undefined : choose(ctx.nodes, c.node, (n) => (n.roles & ROLE.VERIFIER) !== 0)) ??
    ctx.nodes[c.node]!;

  switch (cmd.kind) {
    case "request": {
      const payer = ctx.payers[cmd.payer]!;
      const requester = cmd.viaConsumer ? ctx.consumerAt : addressOf(ctx, payer);
      const gas = cmd.viaConsumer ? CONSUMER_GAS : cmd.eoaGas ? EOA_GAS : 0;
      const fee = MODEL_FEE * BigInt(cmd.k) + cmd.extra;
      const input = encodeTensors([floatTensor("input", [BigInt(ctx.requests.length), 1n, 2n, 3n])]);
      const request: RequestStruct = {
        requestId: BigInt(ctx.requests.length + 1),
        modelId: MODEL_ID,
        requester,
        callbackGasLimit: BigInt(gas),
        deadline: BigInt(ts() + REQUEST_TIMEOUT),
        fee,
        inputHash: sha256(input),
        inputIsRef: false,
        redundancy: BigInt(cmd.k),
      };
      const opts = { value: fee, gasLimit: GAS.request };
      const send = () =>
        cmd.viaConsumer
          ? w.consumer.connect(payer).request(MODEL_ID, input, gas, cmd.k, opts)
          : cmd.k === 1
            ? w.hub.connect(payer).requestInference(MODEL_ID, input, gas, opts)
            : w.hub.connect(payer).requestInferenceRedundant(MODEL_ID, input, gas, cmd.k, opts);
      await transact(ctx, send, {
        events: [
          ev("InferenceRequested", request.requestId, MODEL_ID, requester, requestTuple(request), input),
        ],
        effects: [
          () => {
            ctx.requests.push(newRequest(request, cmd.viaConsumer));
            ctx.paidIn += fee;
            reached(stats, cmd.k === 1 ? "requested single" : `requested k=${cmd.k}`);
          },
        ],
      });
      return true;
    }

    case "answer": {
      const open = (t: Req) =>
        t.state === STATE.Pending || (t.k > 1 && t.state === STATE.Fulfilled && t.answers.size < t.k);
      const t = choose(ctx.requests, cmd.pick, cmd.anyRequest ? undefined : open);
      if (!t) return false;
      const fresh = (n: NodeModel) =>
        isActive(n, ROLE.INFERENCE, ts()) && (t.k === 1 || !t.answers.has(n.address));
      const signer = cmd.anyNode
        ? choose([...ctx.nodes.map((n) => n.signer), ...strangers], cmd.node)!
        : (choose(ctx.nodes, cmd.node, fresh)?.signer ?? nodeSigner(cmd.node));
      const d = OUTPUTS[cmd.output];
      await transact(
        ctx,
        () =>
          w.hub
            .connect(signer)
            .fulfill(t.request, d.status, d.output, d.outputHash, { gasLimit: GAS.fulfill }),
        answerOutcome(ctx, t, signer, cmd.output),
      );
      return true;
    }

    case "challenge": {
      const single = (t: Req) => t.k === 1 && t.state === STATE.Fulfilled;
      const inWindow = (t: Req) =>
        single(t) && t.disputeId === 0 && ts() < Number(t.fulfillment!.fulfilledAt) + CHALLENGE_WINDOW;
      // Mostly a result in its window; else any answered result (late, double), else anything.
      const t =
        cmd.target === "open"
          ? choose(ctx.requests, cmd.pick, inWindow)
          : ((cmd.target === "fulfilled" ? choose(ctx.requests, cmd.pick, single) : undefined) ??
            choose(ctx.requests, cmd.pick));
      if (!t) return false;
      const challenger = cmd.anyone
        ? choose([...ctx.nodes.map((n) => n.signer), ...strangers], cmd.challenger)!
        : (choose(ctx.nodes, cmd.challenger, (n) => isActive(n, ROLE.VERIFIER, ts()))?.signer ??
          nodeSigner(cmd.challenger));
      const who = addressOf(ctx, challenger);
      const f = fulfillmentFor(ctx, t, BigInt(ts()));
      const claimed =
        cmd.claim === "same"
          ? f.outputHash
          : cmd.claim === "zero"
            ? ZeroHash
            : claimedHash(cmd.claim, f.outputHash);
      const value = {
        exact: P.challengeBond,
        none: 0n,
        less: P.challengeBond - 1n,
        more: P.challengeBond + 1n,
      }[cmd.bond];
      const id = t.request.requestId;
      const closesAt = Number(f.fulfilledAt) + CHALLENGE_WINDOW;
      // In the order Settlement.challenge checks, then the hub.
      let outcome: Outcome;
      if (t.k > 1) outcome = err(s, "Settlement__RedundantRequest", id);
      else if (t.disputeId !== 0) outcome = err(s, "Settlement__AlreadyChallenged", id, t.disputeId);
      else if (ts() >= closesAt) outcome = err(s, "Settlement__ChallengeWindowClosed", id, closesAt);
      else if (value !== P.challengeBond) outcome = err(s, "Settlement__WrongBond", value, P.challengeBond);
      else if (!isActive(nodeOf(ctx, who), ROLE.VERIFIER, ts()))
        outcome = err(s, "Settlement__NotVerifier", who);
      else if (claimed === ZeroHash) outcome = err(s, "Settlement__ZeroHash");
      else if (claimed === f.outputHash) outcome = err(s, "Settlement__SameHash", claimed);
      else if (t.state !== STATE.Fulfilled) outcome = err(w.hub, "Hub__WrongState", id, t.state);
      else {
        const d: Disp = {
          id: ctx.disputes.length + 1,
          req: t,
          fulfillment: f,
          challenger: who,
          openedAt: ts(),
          drawBlock: ctx.block + 2,
          votingEndsAt: ts() + VOTING_PERIOD,
          bond: value,
          claimedHash: claimed,
          committee: [],
          votes: new Map(),
          verdict: VERDICT.Pending,
          majority: ZeroHash,
        };
        outcome = {
          events: [
            ev(
              "DisputeOpened",
              d.id,
              ctx.hubAt,
              id,
              who,
              f.node,
              f.outputHash,
              claimed,
              d.drawBlock,
              d.votingEndsAt,
            ),
            ev("ResultChallenged", id, f.node),
          ],
          effects: [
            () => {
              ctx.disputes.push(d);
              t.disputeId = d.id;
              t.state = STATE.Challenged;
              ctx.paidIn += value;
              const honest = f.outputHash === OUTPUTS.right.outputHash;
              reached(stats, `challenged a ${honest ? "right" : "wrong"} result`);
            },
          ],
        };
      }
      await transact(
        ctx,
        () => s.connect(challenger).challenge(t.request, f, claimed, { value, gasLimit: GAS.other }),
        outcome,
      );
      return true;
    }

    case "draw": {
      const undrawn = (d: Disp) => d.verdict === VERDICT.Pending && d.committee.length === 0;
      const ids = cmd.anyDispute
        ? [...ctx.disputes.map((d) => d.id), ctx.disputes.length + 1]
        : ctx.disputes.filter(undrawn).map((d) => d.id);
      const id = choose(ids, cmd.pick);
      if (id === undefined) return false;
      const d = ctx.disputes[id - 1];
      let outcome: Outcome;
      if (!d) outcome = err(s, "Settlement__UnknownDispute", id);
      else if (d.verdict !== VERDICT.Pending) outcome = err(s, "Settlement__DisputeEnded", id, d.verdict);
      else if (d.committee.length !== 0) outcome = err(s, "Settlement__CommitteeAlreadyDrawn", id);
      else {
        const drawn = await drawOutcome(ctx, d);
        outcome = "error" in drawn ? drawn : { events: [drawn.event], effects: [drawn.apply] };
      }
      await transact(ctx, () => s.connect(w.other).drawCommittee(id, { gasLimit: GAS.other }), outcome);
      return true;
    }

    case "vote": {
      const ids = cmd.anyDispute
        ? [...ctx.disputes.map((d) => d.id), ctx.disputes.length + 1]
        : openDisputes().map((d) => d.id);
      const id = choose(ids, cmd.pick);
      if (id === undefined) return false;
      const d = ctx.disputes[id - 1];
      const hash = cmd.hash === "zero" ? ZeroHash : OUTPUTS[cmd.hash].outputHash;
      // The committee this vote meets: drawn, or drawn by this very vote.
      let drawn: Awaited<ReturnType<typeof drawOutcome>> | undefined;
      let committee = d?.committee ?? [];
      if (d && d.verdict === VERDICT.Pending && committee.length === 0 && ts() <= d.votingEndsAt) {
        drawn = await drawOutcome(ctx, d);
        if ("committee" in drawn) committee = drawn.committee;
      }
      const notVoted = committee.filter((m) => !d!.votes.has(m));
      const outsiders = [
        ...ctx.nodes.map((n) => n.address).filter((a) => !committee.includes(a)),
        ...strangers.map((x) => addressOf(ctx, x)),
      ];
      const voter =
        cmd.voter === "outsider" || committee.length === 0
          ? choose(outsiders, cmd.member)!
          : cmd.voter === "any" || notVoted.length === 0
            ? choose(committee, cmd.member)!
            : choose(notVoted, cmd.member)!;
      let outcome: Outcome;
      if (!d) outcome = err(s, "Settlement__UnknownDispute", id);
      else if (d.verdict !== VERDICT.Pending) outcome = err(s, "Settlement__DisputeEnded", id, d.verdict);
      else if (hash === ZeroHash) outcome = err(s, "Settlement__ZeroHash");
      else if (ts() > d.votingEndsAt) outcome = err(s, "Settlement__VotingClosed", id, d.votingEndsAt);
      else if (drawn && "error" in drawn) outcome = drawn;
      else if (!committee.includes(voter)) outcome = err(s, "Settlement__NotCommitteeMember", id, voter);
      else if (d.votes.has(voter)) outcome = err(s, "Settlement__AlreadyVoted", id, voter);
      else {
        const events = drawn && "event" in drawn ? [drawn.event] : [];
        const effects = drawn && "apply" in drawn ? [drawn.apply] : [];
        events.push(ev("VoteCast", id, voter, hash));
        effects.push(() => {
          d.votes.set(voter, hash);
          reached(stats, drawn ? "voted (and drew the committee)" : "voted");
        });
        outcome = { events, effects };
      }
      const signer = ctx.signers.get(voter)!;
      await transact(ctx, () => s.connect(signer).vote(id, hash, { gasLimit: GAS.other }), outcome);
      return true;
    }

    case "resolve": {
      if (cmd.target === "asSource") {
        // A hub dispute is resolved through resolveChallenge only.
        const id = choose([...ctx.disputes.map((d) => d.id), ctx.disputes.length + 1], cmd.pick)!;
        const d = ctx.disputes[id - 1];
        const outcome = d ? err(s, "Settlement__WrongSubject", id) : err(s, "Settlement__UnknownDispute", id);
        await transact(ctx, () => s.connect(w.other).resolveDispute(id, { gasLimit: GAS.other }), outcome);
        return true;
      }
      const t =
        cmd.target === "unchallenged"
          ? choose(ctx.requests, cmd.pick, (x) => x.disputeId === 0)
          : cmd.target === "any"
            ? choose(ctx.requests, cmd.pick, (x) => x.disputeId !== 0)
            : choose(openDisputes(), cmd.pick)?.req;
      if (!t) return false;
      const d = t.disputeId === 0 ? undefined : ctx.disputes[t.disputeId - 1]!;
      if (d && cmd.wait && d.verdict === VERDICT.Pending) await advanceToNext(ctx, d.votingEndsAt + 1);
      await resolve(ctx, t, d);
      return true;
    }

    case "finalize": {
      const t = choose(
        ctx.requests,
        cmd.pick,
        cmd.anyRequest ? undefined : (x) => x.k === 1 && x.state === STATE.Fulfilled,
      );
      if (!t) return false;
      const f = fulfillmentFor(ctx, t, 0n);
      const at = Number(f.fulfilledAt) + CHALLENGE_WINDOW;
      if (cmd.wait) await advanceToNext(ctx, at);
      const id = t.request.requestId;
      let outcome: Outcome;
      if (t.k > 1) outcome = err(s, "Settlement__RedundantRequest", id);
      else if (ts() < at) outcome = err(s, "Settlement__ChallengeWindowOpen", id, at);
      else if (t.state !== STATE.Fulfilled) outcome = err(w.hub, "Hub__WrongState", id, t.state);
      else {
        const split = feeSplit(t.request.fee);
        outcome = {
          events: [
            ev("RequestReleased", id, t.request.fee),
            ev("Settled", id, f.node, ctx.modelOwner, split.nodes, split.owner, split.protocol),
          ],
          effects: [
            () => {
              t.state = STATE.Finalized;
              credit(ctx, f.node, split.nodes);
              credit(ctx, ctx.modelOwner, split.owner);
              credit(ctx, ctx.treasury, split.protocol);
              reached(stats, t.disputeId === 0 ? "finalized" : "finalized after a dispute");
            },
          ],
        };
      }
      await transact(ctx, () => s.connect(w.other).finalize(t.request, f, { gasLimit: GAS.other }), outcome);
      return true;
    }

    case "finalizeRedundant":
      return finalizeRedundant(ctx, cmd);

    case "slashDissenter": {
      const agreed = (x: Req) => x.agreedKey !== ZeroHash;
      const dissenters = (x: Req) =>
        ctx.nodes.filter((n) => {
          const a = x.answers.get(n.address);
          return agreed(x) && a !== undefined && a !== x.agreedKey && !x.dissentersSlashed.has(n.address);
        });
      // Mostly an unslashed dissenter; else a node that answered (agreed, or slashed already).
      const t = cmd.anyRequest
        ? choose(ctx.requests, cmd.pick)
        : (choose(ctx.requests, cmd.pick, (x) => dissenters(x).length > 0) ??
          choose(ctx.requests, cmd.pick, agreed));
      if (!t) return false;
      const answered = ctx.nodes.filter((n) => t.answers.has(n.address));
      const node = cmd.anyNode
        ? addressOf(ctx, choose([...ctx.nodes.map((n) => n.signer), ...strangers], cmd.node)!)
        : (choose(dissenters(t), cmd.node) ?? choose(answered, cmd.node) ?? ctx.nodes[cmd.node]!).address;
      await slashDissenter(ctx, t, node);
      return true;
    }

    case "refund": {
      const t = choose(ctx.requests, cmd.pick, (x) => x.state === STATE.Pending);
      if (!t) return false;
      const r = t.request;
      if (cmd.wait) await advanceToNext(ctx, Number(r.deadline) + 1);
      const events: string[] = [];
      const effects: Effect[] = [() => reached(stats, "refunded after the deadline")];
      let outcome: Outcome;
      if (BigInt(ts()) <= r.deadline) outcome = err(w.hub, "Hub__NotExpired", r.requestId, r.deadline);
      else {
        refundOutcome(ctx, t, STATE.Refunded, events, effects);
        outcome = { events, effects };
      }
      await transact(ctx, () => w.hub.connect(w.other).refundExpired(r, { gasLimit: GAS.other }), outcome);
      return true;
    }

    case "withdraw": {
      const hasCredit = (x: Signer) => creditOf(ctx, addressOf(ctx, x)) > 0n;
      const who = choose(ctx.withdrawers, cmd.who, cmd.anyAccount ? undefined : hasCredit);
      if (!who) return false;
      const account = addressOf(ctx, who);
      const to = addressOf(ctx, ctx.withdrawers[cmd.to] ?? who);
      const amount = creditOf(ctx, account);
      // 3: a withdrawal pays exactly the credit.
      await withdrawCredit(
        s,
        who,
        account,
        to,
        amount,
        (send, o) => transact(ctx, send, o),
        () => {
          ctx.credits.set(account, 0n);
          ctx.withdrawn += amount;
          reached(stats, "withdrawn");
        },
      );
      return true;
    }

    case "setRoles": {
      const n = verifierMostly(cmd);
      const short = [ROLE.INFERENCE, ROLE.VERIFIER].find(
        (r) => (cmd.roles & r) !== 0 && n.stake < minStakeOf(r),
      );
      const outcome: Outcome =
        short !== undefined
          ? err(w.nodes, "NodeRegistry__StakeBelowMinimum", short, n.stake, minStakeOf(short))
          : {
              events: [ev("RolesChanged", n.address, n.roles, cmd.roles)],
              effects: [
                () => {
                  n.roles = cmd.roles;
                  const set = ctx.verifierSet;
                  const at = set.indexOf(n.address);
                  // EnumerableSet: add appends; remove moves the last entry into the gap.
                  if ((cmd.roles & ROLE.VERIFIER) !== 0) {
                    if (at < 0) set.push(n.address);
                  } else if (at >= 0) {
                    const last = set.pop()!;
                    if (at < set.length) set[at] = last;
                  }
                  reached(stats, `roles set to ${cmd.roles}`);
                },
              ],
            };
      await transact(
        ctx,
        () => w.nodes.connect(n.signer).setRoles(cmd.roles, { gasLimit: GAS.other }),
        outcome,
      );
      return true;
    }

    case "unbond": {
      const n = verifierMostly(cmd);
      const amount = { one: 1n, half: n.stake / 2n, all: n.stake, more: n.stake + 1n, zero: 0n }[cmd.amount];
      const releaseAt = BigInt(ts() + UNBONDING_DELAY);
      const outcome: Outcome =
        amount === 0n
          ? err(w.nodes, "NodeRegistry__ZeroAmount")
          : amount > n.stake
            ? err(w.nodes, "NodeRegistry__InsufficientStake", amount, n.stake)
            : {
                events: [ev("UnbondingStarted", n.address, amount, n.unbonding + amount, releaseAt)],
                effects: [
                  () => {
                    n.stake -= amount;
                    n.unbonding += amount;
                    n.unbondingReleaseAt = releaseAt;
                    reached(stats, "unbonding started");
                  },
                ],
              };
      await transact(
        ctx,
        () => w.nodes.connect(n.signer).startUnbonding(amount, { gasLimit: GAS.other }),
        outcome,
      );
      return true;
    }

    case "nodeWithdraw": {
      const n = choose(ctx.nodes, cmd.node, cmd.anyNode ? undefined : (x) => x.unbonding > 0n);
      if (!n) return false;
      if (cmd.wait && n.unbonding > 0n) await advanceToNext(ctx, Number(n.unbondingReleaseAt));
      const amount = n.unbonding;
      const send = () => w.nodes.connect(n.signer).withdraw({ gasLimit: GAS.other });
      if (amount === 0n) {
        await transact(ctx, send, err(w.nodes, "NodeRegistry__NothingUnbonding", n.address));
        return true;
      }
      if (BigInt(ts()) < n.unbondingReleaseAt) {
        await transact(
          ctx,
          send,
          err(w.nodes, "NodeRegistry__StillUnbonding", n.address, n.unbondingReleaseAt),
        );
        return true;
      }
      const before = await balanceOf(n.address);
      const receipt = await transact(ctx, send, {
        events: [ev("StakeWithdrawn", n.address, amount)],
        effects: [
          () => {
            n.unbonding = 0n;
            n.unbondingReleaseAt = 0n;
            ctx.withdrawn += amount;
            reached(stats, "stake withdrawn");
          },
        ],
      });
      same(
        (await balanceOf(n.address)) - before + receipt!.fee,
        amount,
        "a node withdraws its unbonded stake",
      );
      return true;
    }

    case "addStake": {
      const n = ctx.nodes[cmd.node]!;
      await transact(
        ctx,
        () => w.nodes.connect(n.signer).addStake({ value: cmd.value, gasLimit: GAS.other }),
        {
          events: [ev("StakeAdded", n.address, cmd.value, n.stake + cmd.value)],
          effects: [
            () => {
              n.stake += cmd.value;
              ctx.paidIn += cmd.value;
              reached(stats, "stake added");
            },
          ],
        },
      );
      return true;
    }

    case "advance":
      await advance(ctx, cmd.seconds);
      return true;

    case "advanceTo": {
      // Put the next call's block on a boundary (plus `offset` seconds).
      let boundary: number | undefined;
      if (cmd.to === "votingEnd") boundary = choose(openDisputes(), cmd.pick)?.votingEndsAt;
      else if (cmd.to === "deadline")
        boundary = Number(
          choose(ctx.requests, cmd.pick, (t) => t.state === STATE.Pending)?.request.deadline ?? 0,
        );
      else {
        const t = choose(ctx.requests, cmd.pick, (x) => x.k === 1 && x.state === STATE.Fulfilled);
        boundary = t ? Number(t.fulfillment!.fulfilledAt) + CHALLENGE_WINDOW : undefined;
      }
      if (!boundary || boundary + cmd.offset - 1 <= ctx.now) return false;
      await advanceToNext(ctx, boundary + cmd.offset);
      return true;
    }
  }
}

/** resolveChallenge for `t`, whose dispute is `d` (if any). */
async function resolve(ctx: Ctx, t: Req, d: Disp | undefined): Promise<void> {
  const s = ctx.w.settlement;
  const id = t.request.requestId;
  const f = fulfillmentFor(ctx, t, 0n);
  let outcome: Outcome;
  if (!d) outcome = err(s, "Settlement__NotChallenged", id);
  else if (d.verdict !== VERDICT.Pending) outcome = err(s, "Settlement__DisputeEnded", d.id, d.verdict);
  else if (ctx.now + 1 <= d.votingEndsAt && (d.committee.length === 0 || d.votes.size < d.committee.length))
    outcome = err(s, "Settlement__VotingOpen", d.id, d.votingEndsAt);
  else outcome = resolveOutcome(ctx, d, ctx.now + 1);
  await transact(
    ctx,
    () => s.connect(ctx.w.other).resolveChallenge(t.request, f, { gasLimit: GAS.other }),
    outcome,
  );
}

/** slashDissenter(t, node) by anyone. */
async function slashDissenter(ctx: Ctx, t: Req, node: string): Promise<void> {
  const s = ctx.w.settlement;
  const id = t.request.requestId;
  const answer = t.answers.get(node);
  let outcome: Outcome;
  if (t.agreedKey === ZeroHash) outcome = err(s, "Settlement__NoAgreement", id);
  else if (answer === undefined || answer === t.agreedKey || t.dissentersSlashed.has(node))
    outcome = err(s, "Settlement__NotDissenter", id, node);
  else {
    const slash = slashOutcome(nodeOf(ctx, node)!, P.slashAmount, true, ctx.now + 1);
    outcome = {
      events: [slash.event, ev("DissenterSlashed", id, node, slash.slashed)],
      effects: [
        slash.apply,
        () => {
          t.dissentersSlashed.add(node);
          credit(ctx, ctx.treasury, slash.slashed);
          reached(stats, "dissenter slashed");
        },
      ],
    };
  }
  await transact(
    ctx,
    () => s.connect(ctx.w.other).slashDissenter(id, node, { gasLimit: GAS.other }),
    outcome,
  );
}

async function finalizeRedundant(
  ctx: Ctx,
  cmd: Extract<Cmd, { kind: "finalizeRedundant" }>,
): Promise<boolean> {
  const { w } = ctx;
  const s = w.settlement;
  const t = choose(
    ctx.requests,
    cmd.pick,
    cmd.anyRequest ? undefined : (x) => x.k > 1 && x.state === STATE.Fulfilled,
  );
  if (!t) return false;
  const id = t.request.requestId;
  // The agreeing nodes, as a keeper finds them: from the chain's agreement and answers.
  const hub = w.hub.interface as unknown as Interface;
  const [agreement, ...answers] = await readAll([
    view(hub, ctx.hubAt, "agreementOf", id),
    ...ctx.nodes.map((n) => view(hub, ctx.hubAt, "answerOf", id, n.address)),
  ]);
  const agreedKey = toBeHex(agreement![1]!, 32);
  const fromChain = ctx.nodes.filter(
    (_, i) => agreedKey !== ZeroHash && toBeHex(answers[i]![0]!, 32) === agreedKey,
  );
  const modelAgreeing = ctx.nodes.filter(
    (n) => t.agreedKey !== ZeroHash && t.answers.get(n.address) === t.agreedKey,
  );
  same(
    show(fromChain.map((n) => n.address)),
    show(modelAgreeing.map((n) => n.address)),
    `agreeing nodes of ${id}`,
  );
  same(agreement![3], BigInt(t.agreeing), `agreementOf(${id}).agreeing`);
  const agreeing = fromChain.map((n) => n.address);
  const rot = agreeing.length === 0 ? 0 : cmd.rotate % agreeing.length;
  let list = [...agreeing.slice(rot), ...agreeing.slice(0, rot)];
  if (cmd.list === "drop") list = list.slice(0, -1);
  else if (cmd.list === "duplicate")
    list = list.length >= 2 ? [...list.slice(0, -1), list[0]!] : [...list, ...list];
  else if (cmd.list === "extra") list = [...list, ctx.nodes.find((n) => !list.includes(n.address))!.address];
  else if (cmd.list === "empty") list = [];

  const f = fulfillmentFor(ctx, t, 0n);
  const at = Number(f.fulfilledAt) + CHALLENGE_WINDOW;
  if (cmd.wait) await advanceToNext(ctx, at);
  const ts = ctx.now + 1;
  let outcome: Outcome;
  const notAgreeing =
    list.length === 0 ||
    list.length !== t.agreeing ||
    list.some((n) => t.answers.get(n) !== t.agreedKey) ||
    new Set(list).size !== list.length;
  if (t.k < 2) outcome = err(s, "Settlement__NotRedundant", id);
  else if (notAgreeing) outcome = err(s, "Settlement__NotAgreeingNodes", id);
  else if (ts < at) outcome = err(s, "Settlement__ChallengeWindowOpen", id, at);
  else if (t.state !== STATE.Fulfilled) outcome = err(w.hub, "Hub__WrongState", id, t.state);
  else {
    const split = feeSplit(t.request.fee);
    const each = split.nodes / BigInt(list.length);
    outcome = {
      events: [
        ev("RequestReleased", id, t.request.fee),
        ev("SettledRedundant", id, list, each, split.owner, split.protocol),
      ],
      effects: [
        () => {
          t.state = STATE.Finalized;
          for (const n of list) credit(ctx, n, each);
          // The division's remainder goes to the first node.
          credit(ctx, list[0]!, split.nodes - each * BigInt(list.length));
          credit(ctx, ctx.modelOwner, split.owner);
          credit(ctx, ctx.treasury, split.protocol);
          reached(stats, `finalized redundant, ${list.length} agreeing of ${t.k}`);
        },
      ],
    };
  }
  await transact(
    ctx,
    () => s.connect(w.other).finalizeRedundant(t.request, f, list, { gasLimit: GAS.other }),
    outcome,
  );
  return true;
}

// ================================================================================== sequences

const FALLBACK_CLAIMS: HashChoice[] = ["right", "right", "wrong", "third"];
const FALLBACK_OUTPUTS: Output[] = ["right", "right", "wrong", "wrong", "third", "error"];

/**
 * What to do instead of a step that found nothing to act on: the step that would give it
 * something (a challenge for a vote, an answer for a challenge or a payout, a request for an
 * answer). Random order alone seldom lines up request, answer, challenge and votes inside a
 * 60-second window; this keeps every sequence moving through disputes. Fields come from `pick`.
 */
function stepBefore(cmd: Cmd): Cmd | undefined {
  const n = "pick" in cmd ? cmd.pick : 0;
  switch (cmd.kind) {
    case "draw":
    case "vote":
    case "resolve":
      return {
        kind: "challenge",
        pick: n,
        target: "open",
        challenger: n,
        anyone: false,
        claim: FALLBACK_CLAIMS[n % FALLBACK_CLAIMS.length]!,
        bond: "exact",
      };
    case "challenge":
    case "finalize":
    case "finalizeRedundant":
    case "slashDissenter":
      if (cmd.kind === "challenge" && cmd.target !== "open") return undefined;
      return {
        kind: "answer",
        pick: n,
        anyRequest: false,
        node: n,
        anyNode: false,
        output: FALLBACK_OUTPUTS[n % FALLBACK_OUTPUTS.length]!,
      };
    case "answer":
      if (cmd.anyRequest) return undefined;
      return {
        kind: "request",
        payer: n % 2,
        viaConsumer: n % 3 === 0,
        k: n % 5 < 3 ? 1 : 2 + (n % 3),
        extra: 0n,
        eoaGas: false,
      };
    default:
      return undefined;
  }
}

async function runSequence(cmds: Cmd[]): Promise<void> {
  const w = await loadFixture(disputeFixture);
  const nodeSigners = [w.node1, w.node2, w.node3, ...w.verifiers];
  const withdrawers = [w.user, w.other, w.treasury, w.modelOwner, ...nodeSigners];
  const signers = new Map<string, Signer>();
  const addr = new Map<Signer, string>();
  for (const x of withdrawers) {
    const a = await x.getAddress();
    addr.set(x, a);
    signers.set(a, x);
  }
  const registry = w.nodes.interface as unknown as Interface;
  const infos = await readAll(
    nodeSigners.map((x) => view(registry, w.addresses.nodeRegistry, "nodeInfo", addr.get(x)!)),
  );
  const nodes: NodeModel[] = nodeSigners.map((signer, i) => {
    const [stake, roles, jailedUntil, unbonding, unbondingReleaseAt, registeredAt] = infos[i]!;
    return {
      signer,
      address: addr.get(signer)!,
      stake: stake!,
      roles: Number(roles),
      jailedUntil: jailedUntil!,
      unbonding: unbonding!,
      unbondingReleaseAt: unbondingReleaseAt!,
      registeredAt: registeredAt!,
    };
  });
  const consumerAt = await w.consumer.getAddress();
  const ctx: Ctx = {
    w,
    now: await latestTimestamp(),
    block: Number(await provider.request({ method: "eth_blockNumber", params: [] })),
    nodes,
    verifierSet: nodes.filter((n) => (n.roles & ROLE.VERIFIER) !== 0).map((n) => n.address),
    requests: [],
    disputes: [],
    credits: new Map(),
    accounts: [...withdrawers.map((x) => addr.get(x)!), consumerAt],
    signers,
    addr,
    withdrawers,
    payers: [w.user, w.other],
    paidIn: nodes.reduce((sum, n) => sum + n.stake + n.unbonding, 0n),
    withdrawn: 0n,
    hubAt: getAddress(w.addresses.inferenceHub),
    settlementAt: getAddress(w.addresses.settlement),
    registryAt: getAddress(w.addresses.nodeRegistry),
    consumerAt,
    treasury: addr.get(w.treasury)!,
    modelOwner: addr.get(w.modelOwner)!,
    interfaces: new Map<string, Interface>([
      [lower(w.addresses.inferenceHub), w.hub.interface as unknown as Interface],
      [lower(w.addresses.settlement), w.settlement.interface as unknown as Interface],
      [lower(w.addresses.nodeRegistry), registry],
    ]),
  };
  stats.sequences++;
  // The steps that ran (a step with nothing to act on runs the one before it), for the report.
  const ran: string[] = [];
  try {
    await runSteps(ctx, cmds, ran);
  } catch (e) {
    if (e instanceof Error) e.message = `${e.message}\nsteps that ran:\n  ${ran.join("\n  ")}`;
    throw e;
  }
}

async function runSteps(ctx: Ctx, cmds: Cmd[], ran: string[]): Promise<void> {
  await check(ctx);
  for (const cmd of cmds) {
    stats.commands++;
    let step: Cmd | undefined = cmd;
    while (step && !(await runCommand(ctx, step))) step = stepBefore(step);
    if (step) {
      ran.push(show(step));
      await check(ctx);
    } else stats.noops++;
  }

  // Every dispute ends: past every voting period, each open one resolves with a verdict.
  const open = ctx.disputes.filter((d) => d.verdict === VERDICT.Pending);
  if (open.length > 0) await advanceToNext(ctx, Math.max(...open.map((d) => d.votingEndsAt)) + 1);
  for (const d of open) {
    ran.push(`end: resolve dispute ${d.id}`);
    await resolve(ctx, d.req, d);
    holds(d.verdict !== VERDICT.Pending, `dispute ${d.id} did not end`);
    await check(ctx);
  }
  // Every dissenter of an agreed redundant request can be slashed, and only once.
  for (const t of ctx.requests.filter((x) => x.agreedKey !== ZeroHash)) {
    for (const [node, key] of t.answers) {
      if (key === t.agreedKey) continue;
      const times = t.dissentersSlashed.has(node) ? 1 : 2;
      for (let i = 0; i < times; i++) {
        ran.push(`end: slashDissenter(${t.request.requestId}, ${node})`);
        await slashDissenter(ctx, t, node);
        await check(ctx);
      }
    }
  }
  same(ctx.last!.bondsHeld, 0n, "every dispute ended: bondsHeld() == 0");
  for (const d of ctx.disputes) holds(d.verdict !== VERDICT.Pending, `dispute ${d.id} ended`);
  expect(await latestTimestamp(), "harness: the model's clock").to.equal(ctx.now);
  expect(
    Number(await provider.request({ method: "eth_blockNumber", params: [] })),
    "harness: the model's block",
  ).to.equal(ctx.block);
}

// ======================================================================================= tests

describe("dispute and redundancy properties (fast-check, random call sequences)", function () {
  const runs = configuredRuns(CI_RUNS);

  before(function () {
    this.timeout(60_000);
    batchReaderRuntimeCode(); // compile once, outside the timed property
  });

  after(function () {
    report("disputes and redundancy", stats);
  });

  it(`disputes and redundant requests conserve value, slash within stake and end once (${runs} sequences)`, async function () {
    this.timeout(Math.max(120_000, runs * 3_000));
    const started = Date.now();
    try {
      await fc.assert(fc.asyncProperty(disputeSequence, runSequence), fcParameters<[Cmd[]]>(runs));
    } finally {
      stats.ms += Date.now() - started;
    }
  });
});
