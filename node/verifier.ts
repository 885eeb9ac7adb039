/**
 * The verifier: the full node's check on inference nodes.
 *
 * It follows the hub's InferenceFulfilled logs from a checkpoint (like the watcher), picks a
 * share of the successful results (`VERIFY_SHARE`; a secret, deterministic draw per request, so
 * a worker cannot tell which of its answers will be checked), re-executes each with the worker's
 * own code (`computeAnswer` from inference-worker: same model bytes, same onnxruntime settings,
 * same canonical encoding) and compares output hashes. On a mismatch it challenges the result
 * inside its window, with the bond, claiming the hash it computed.
 *
 * It also follows the settlement's DisputeOpened logs: once the draw block has passed it draws
 * the committee if nobody has, votes with each of its identities that the draw put on the
 * committee (the hash it computes itself, never a copy of someone's claim), and resolves the
 * dispute once everyone voted or voting closed, so a verdict never waits for a person.
 *
 * Pure decisions (`classifyStatus`, `isSampled`, `challengeWindowOpen`, `disputeActions`,
 * `checkpointAfter`) are unit-tested; the chain and the model runs sit behind two small
 * interfaces (`VerifierChain`, `AnswerSource`) with viem and onnxruntime adapters.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import {
  concat,
  createWalletClient,
  encodeAbiParameters,
  http,
  keccak256,
  stringToHex,
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
  DisputeVerdict,
  GradnetError,
  ModelHashMismatchError,
  ResultStatus,
  decodeRevert,
  inferenceHubAbi,
  nodeRegistryAbi,
  settlementAbi,
  type DisputeVerdictName,
  type Fulfillment,
  type Request,
  type RequestedLog,
} from "../sdk";
import {
  FetchError,
  InputHashMismatchError,
  ModelSchemaError,
  computeAnswer,
  fetchCommittedInput,
  type ModelCache,
} from "../inference-worker";
import type { HubReader } from "./chain";
import { backoffDelay, nextRange, type CheckpointStore, type WatcherLogger } from "./watcher";
import { BackgroundLoop } from "./loop";

// ------------------------------------------------------------------------------- pure core

/** What the verifier does with a fulfilment, by its status. */
export type StatusCheck = "verify" | "offchain" | "errorStatus";

/**
 * Success results are re-executed. SuccessOffchain results (the output lives in the store, by
 * hash) are not checked yet; error statuses (InvalidInput, InputUnavailable, ModelFailed) cannot
 * be disputed and their fee is already refunded.
 */
export function classifyStatus(status: number): StatusCheck {
  if (status === ResultStatus.Success) return "verify";
  if (status === ResultStatus.SuccessOffchain) return "offchain";
  return "errorStatus";
}

const SAMPLE_DOMAIN = stringToHex("gradnet/verifier/sample/v1");

/**
 * The secret behind this node's sampling, derived from its first verifier key: nobody without
 * the key can tell which requests it will check, and the same key always checks the same ones.
 */
export function samplingSecret(privateKey: Hex): Hex {
  return keccak256(concat([SAMPLE_DOMAIN, privateKey]));
}

/**
 * Whether `requestId` is in this node's sample: `keccak256(secret, requestId)`, read as a number
 * below 2^256, is under `share × 2^256`. 1 checks everything, 0 nothing. Pure and deterministic.
 */
export function isSampled(secret: Hex, requestId: bigint, share: number): boolean {
  if (!(share >= 0 && share <= 1)) throw new RangeError(`share must be in [0, 1], got ${share}`);
  if (share === 1) return true;
  if (share === 0) return false;
  const draw = BigInt(
    keccak256(encodeAbiParameters([{ type: "bytes32" }, { type: "uint256" }], [secret, requestId])),
  );
  const threshold = BigInt(Math.floor(share * 2 ** 53)) << 203n; // share × 2^256, to 53 bits
  return draw < threshold;
}

/** A result can be challenged while `now < fulfilledAt + challengeWindow` (the contract's rule). */
export function challengeWindowOpen(fulfilledAt: bigint, challengeWindow: bigint, now: bigint): boolean {
  return now < fulfilledAt + challengeWindow;
}

/** A dispute as `Settlement.dispute(id)` returns it. */
export interface DisputeView {
  source: Address;
  openedAt: bigint;
  drawBlock: bigint;
  challenger: Address;
  votingEndsAt: bigint;
  accused: Address;
  bond: bigint;
  subjectId: bigint;
  accusedHash: Hex;
  claimedHash: Hex;
  majorityHash: Hex;
  /** DisputeVerdict number; 0 = Pending. */
  verdict: number;
  votesCast: number;
  committee: readonly Address[];
}

export type DisputeAction = { kind: "draw" } | { kind: "vote"; voter: Address } | { kind: "resolve" };

const same = (a: Address, b: Address) => a.toLowerCase() === b.toLowerCase();

/**
 * What this node can do for a pending dispute now, by the contract's rules. `head` and `now` are
 * the latest block's number and timestamp; `ours` the node's verifier identities; `voted` those
 * of them that have voted. Draw once the draw block has passed and voting is open; vote with each
 * of our identities on the committee that has not voted, while voting is open; resolve once every
 * member voted or voting closed (and none of ours still has a vote to cast). Pure.
 */
export function disputeActions(
  d: DisputeView,
  ctx: { head: bigint; now: bigint; ours: readonly Address[]; voted: readonly Address[] },
): DisputeAction[] {
  if (d.verdict !== 0) return [];
  const votingOpen = ctx.now <= d.votingEndsAt;
  if (d.committee.length === 0) {
    if (!votingOpen) return [{ kind: "resolve" }];
    return ctx.head > d.drawBlock ? [{ kind: "draw" }] : [];
  }
  const votes: DisputeAction[] = votingOpen
    ? ctx.ours
        .filter((k) => d.committee.some((m) => same(m, k)) && !ctx.voted.some((v) => same(v, k)))
        .map((voter) => ({ kind: "vote", voter }))
    : [];
  if (votes.length > 0) return votes;
  return !votingOpen || d.votesCast >= d.committee.length ? [{ kind: "resolve" }] : [];
}

/**
 * The block to record as the checkpoint: everything up to `scannedTo`, except that a result still
 * waiting to be checked keeps the checkpoint before its block, so a restart checks it again.
 */
export function checkpointAfter(scannedTo: bigint, waitingBlocks: Iterable<bigint>): bigint {
  let at = scannedTo;
  for (const b of waitingBlocks) if (b - 1n < at) at = b - 1n;
  return at;
}

/**
 * Where a verifier's checkpoint lives in Redis: one per chain, hub, namespace (the relayer's
 * QUEUE_NAME, so that two devnets sharing one Redis keep theirs apart) and first verifier identity.
 */
export function verifierCheckpointKey(
  chainId: number,
  hub: Address,
  namespace: string,
  verifier: Address,
): string {
  return `gradnet:verifier:${chainId}:${hub.toLowerCase()}:${namespace}:${verifier.toLowerCase()}:checkpoint`;
}

// -------------------------------------------------------------------------------- adapters

/** An InferenceFulfilled log, reduced to what the verifier uses. */
export interface FulfilledEvent {
  requestId: bigint;
  status: number;
  fulfillment: Fulfillment;
  blockNumber: bigint;
}

/** A DisputeOpened log, reduced to what the verifier uses. */
export interface OpenedEvent {
  disputeId: bigint;
  source: Address;
  subjectId: bigint;
  challenger: Address;
  accused: Address;
  blockNumber: bigint;
}

/** The verifier's window on the chain; `viemVerifierChain` is the real one. */
export interface VerifierChain {
  readonly hub: Address;
  /** The verifier identities this node signs for; the first opens challenges. */
  readonly verifiers: readonly Address[];
  getBlockNumber(): Promise<bigint>;
  /** The latest block's number and timestamp (unix seconds). */
  getLatest(): Promise<{ number: bigint; timestamp: bigint }>;
  /** `Settlement.params().challengeWindow`, seconds. */
  getChallengeWindow(): Promise<bigint>;
  getFulfilled(fromBlock: bigint, toBlock: bigint): Promise<FulfilledEvent[]>;
  getOpened(fromBlock: bigint, toBlock: bigint): Promise<OpenedEvent[]>;
  /** The request's InferenceRequested log (its Request struct and inline input or URI). */
  findRequest(requestId: bigint): Promise<RequestedLog | undefined>;
  /** The fulfilment the hub recorded for a request (from its InferenceFulfilled log). */
  findFulfillment(requestId: bigint): Promise<Fulfillment | undefined>;
  getDispute(disputeId: bigint): Promise<DisputeView>;
  hasVoted(disputeId: bigint, voter: Address): Promise<boolean>;
  /** Simulate, send and wait; throw a viem error on a revert. */
  challenge(
    from: Address,
    request: Request,
    fulfillment: Fulfillment,
    claimedHash: Hex,
  ): Promise<{ tx: Hex; disputeId: bigint }>;
  drawCommittee(from: Address, disputeId: bigint): Promise<Hex>;
  vote(from: Address, disputeId: bigint, outputHash: Hex): Promise<Hex>;
  resolveChallenge(
    from: Address,
    request: Request,
    fulfillment: Fulfillment,
  ): Promise<{ tx: Hex; verdict: number }>;
}

/** The settlement ABI plus the hub's and the node registry's errors, so nested reverts decode. */
const settlementWithErrors = [
  ...settlementAbi,
  ...inferenceHubAbi.filter((e) => e.type === "error"),
  ...nodeRegistryAbi.filter((e) => e.type === "error"),
] as const;

export function viemVerifierChain(opts: {
  publicClient: PublicClient;
  rpcUrl: string;
  chain?: Chain;
  privateKeys: readonly Hex[];
  hub: Address;
  settlement: Address;
  reader: HubReader;
  /** Where per-request log searches start (the hub's deployment block). */
  searchFromBlock: bigint;
}): VerifierChain {
  const { publicClient, hub, settlement, reader } = opts;
  const wallets = new Map<string, WalletClient<Transport, Chain | undefined, Account>>();
  for (const key of opts.privateKeys) {
    const account = privateKeyToAccount(key, { nonceManager });
    wallets.set(
      account.address.toLowerCase(),
      createWalletClient({
        account,
        chain: opts.chain,
        transport: http(opts.rpcUrl, { retryCount: 2, timeout: 30_000 }),
      }),
    );
  }
  const wallet = (from: Address) => {
    const w = wallets.get(from.toLowerCase());
    if (w === undefined) throw new Error(`no key for verifier ${from}`);
    return w;
  };
  const send = async (from: Address, request: unknown): Promise<Hex> => {
    const hash = await wallet(from).writeContract(request as Parameters<WalletClient["writeContract"]>[0]);
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
    if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
    return hash;
  };
  const account = (from: Address) => wallet(from).account;

  return {
    hub,
    verifiers: [...wallets.values()].map((w) => w.account.address),
    getBlockNumber: () => publicClient.getBlockNumber({ cacheTime: 0 }),
    async getLatest() {
      const block = await publicClient.getBlock({ blockTag: "latest" });
      return { number: block.number, timestamp: block.timestamp };
    },
    async getChallengeWindow() {
      const params = await publicClient.readContract({
        address: settlement,
        abi: settlementAbi,
        functionName: "params",
      });
      return BigInt(params.challengeWindow);
    },
    async getFulfilled(fromBlock, toBlock) {
      const logs = await publicClient.getContractEvents({
        address: hub,
        abi: inferenceHubAbi,
        eventName: "InferenceFulfilled",
        fromBlock,
        toBlock,
        strict: true,
      });
      return logs.map((log) => ({
        requestId: log.args.requestId,
        status: log.args.status,
        fulfillment: {
          node: log.args.node,
          outputHash: log.args.outputHash,
          fulfilledAt: log.args.fulfilledAt,
        },
        blockNumber: log.blockNumber,
      }));
    },
    async getOpened(fromBlock, toBlock) {
      const logs = await publicClient.getContractEvents({
        address: settlement,
        abi: settlementAbi,
        eventName: "DisputeOpened",
        fromBlock,
        toBlock,
        strict: true,
      });
      return logs.map((log) => ({
        disputeId: log.args.disputeId,
        source: log.args.source,
        subjectId: log.args.subjectId,
        challenger: log.args.challenger,
        accused: log.args.accused,
        blockNumber: log.blockNumber,
      }));
    },
    findRequest: (requestId) => reader.findRequested(requestId),
    async findFulfillment(requestId) {
      const log = await reader.findFulfilled(requestId, opts.searchFromBlock);
      if (log === undefined) return undefined;
      return { node: log.node, outputHash: log.outputHash, fulfilledAt: log.fulfilledAt };
    },
    async getDispute(disputeId) {
      const d = await publicClient.readContract({
        address: settlement,
        abi: settlementAbi,
        functionName: "dispute",
        args: [disputeId],
      });
      return {
        source: d.source,
        openedAt: d.openedAt,
        drawBlock: d.drawBlock,
        challenger: d.challenger,
        votingEndsAt: d.votingEndsAt,
        accused: d.accused,
        bond: d.bond,
        subjectId: d.subjectId,
        accusedHash: d.accusedHash,
        claimedHash: d.claimedHash,
        majorityHash: d.majorityHash,
        verdict: d.verdict,
        votesCast: d.votesCast,
        committee: d.committee,
      };
    },
    async hasVoted(disputeId, voter) {
      const v = await publicClient.readContract({
        address: settlement,
        abi: settlementAbi,
        functionName: "voteOf",
        args: [disputeId, voter],
      });
      return BigInt(v) !== 0n;
    },
    async challenge(from, req, fulfillment, claimedHash) {
      const bond = await publicClient.readContract({
        address: settlement,
        abi: settlementAbi,
        functionName: "challengeBond",
      });
      const { request, result } = await publicClient.simulateContract({
        account: account(from),
        address: settlement,
        abi: settlementWithErrors,
        functionName: "challenge",
        args: [req, fulfillment, claimedHash],
        value: bond,
      });
      return { tx: await send(from, request), disputeId: result };
    },
    async drawCommittee(from, disputeId) {
      const { request } = await publicClient.simulateContract({
        account: account(from),
        address: settlement,
        abi: settlementWithErrors,
        functionName: "drawCommittee",
        args: [disputeId],
      });
      return send(from, request);
    },
    async vote(from, disputeId, outputHash) {
      const { request } = await publicClient.simulateContract({
        account: account(from),
        address: settlement,
        abi: settlementWithErrors,
        functionName: "vote",
        args: [disputeId, outputHash],
      });
      return send(from, request);
    },
    async resolveChallenge(from, req, fulfillment) {
      const { request, result } = await publicClient.simulateContract({
        account: account(from),
        address: settlement,
        abi: settlementWithErrors,
        functionName: "resolveChallenge",
        args: [req, fulfillment],
      });
      return { tx: await send(from, request), verdict: result };
    },
  };
}

/** What an honest node answers for a request, as far as the verifier can tell. */
export type Recomputed = { outputHash: Hex } | { unverifiable: string };

/** Re-executes requests; `workerAnswerSource` runs the inference worker's own code. */
export interface AnswerSource {
  /**
   * The output hash an honest node computes for `request` on `input` (the inline input bytes; for
   * a by-reference request, `inputUri` is where they are stored), or why it cannot be computed
   * (the honest answer is an error status, the model or the input is refused). Throws on
   * failures worth retrying (RPC, a store that does not answer).
   */
  compute(request: Request, input: Hex, inputUri: string | undefined): Promise<Recomputed>;
  close?(): Promise<void>;
}

/**
 * Re-execution with the worker's code: `ModelCache` (sha256-verified model bytes, same session
 * options) and `computeAnswer` (decode, schema check, run, canonical encoding, hash).
 */
export function workerAnswerSource(opts: {
  models: Pick<ModelCache, "get" | "close">;
  maxInputBytes: number;
  fetchInput?: (uri: string, maxBytes: number) => Promise<Uint8Array>;
}): AnswerSource {
  return {
    async compute(request, input, inputUri) {
      let bytes = input;
      if (request.inputIsRef) {
        try {
          bytes = await fetchCommittedInput(
            inputUri ?? "",
            request.inputHash,
            opts.maxInputBytes,
            opts.fetchInput,
          );
        } catch (err) {
          if (err instanceof InputHashMismatchError || (err instanceof FetchError && err.permanent))
            return { unverifiable: `the input is unavailable: ${err.message}` };
          throw err;
        }
      }
      let model;
      try {
        model = await opts.models.get(request.modelId);
      } catch (err) {
        if (
          err instanceof ModelHashMismatchError ||
          err instanceof ModelSchemaError ||
          (err instanceof FetchError && err.permanent) ||
          (err instanceof GradnetError && err.code === "MODEL_NOT_FOUND")
        )
          return { unverifiable: `the model cannot be run: ${err.message}` };
        throw err;
      }
      const answer = await computeAnswer(model, bytes);
      if (answer.status === "Success") return { outputHash: answer.outputHash };
      return { unverifiable: `an honest node answers ${answer.status}: ${answer.reason}` };
    },
    close: () => opts.models.close(),
  };
}

export interface VerifierMetrics {
  checked: Counter<"outcome">;
  skipped: Counter<"reason">;
  challenges: Counter<"result">;
  votes: Counter;
  resolved: Counter<"verdict">;
  errors: Counter;
  openDisputes: Gauge;
}

/** The verifier's metrics, in the relayer's registry. */
export function createVerifierMetrics(registry: Registry): VerifierMetrics {
  const registers = [registry];
  return {
    checked: new Counter({
      name: "gradnet_verifier_results_checked_total",
      help: "Results re-executed, by outcome: match, mismatch (the node's hash is wrong), unverifiable",
      labelNames: ["outcome"] as const,
      registers,
    }),
    skipped: new Counter({
      name: "gradnet_verifier_results_skipped_total",
      help: "Results not re-executed, by reason: not_sampled, offchain, error_status, window_closed, redundant",
      labelNames: ["reason"] as const,
      registers,
    }),
    challenges: new Counter({
      name: "gradnet_verifier_challenges_total",
      help: "Challenges of mismatched results, by result: opened, already_challenged, window_closed, failed",
      labelNames: ["result"] as const,
      registers,
    }),
    votes: new Counter({
      name: "gradnet_verifier_votes_total",
      help: "Committee votes cast by this node's verifier identities",
      registers,
    }),
    resolved: new Counter({
      name: "gradnet_verifier_disputes_resolved_total",
      help: "Disputes this node resolved (resolveChallenge), by verdict",
      labelNames: ["verdict"] as const,
      registers,
    }),
    errors: new Counter({
      name: "gradnet_verifier_errors_total",
      help: "Failed verifier steps (RPC, model runs, transactions); each is retried",
      registers,
    }),
    openDisputes: new Gauge({
      name: "gradnet_verifier_open_disputes",
      help: "Disputes about hub results that this node follows (pending verdict)",
      registers,
    }),
  };
}

export interface VerifierOptions {
  chain: VerifierChain;
  answers: AnswerSource;
  /** Share of Success results re-executed, 0..1. */
  share: number;
  /** From `samplingSecret(first verifier key)`. */
  samplingSecret: Hex;
  startBlock: bigint;
  confirmations: number;
  logChunkBlocks: number;
  intervalMs: number;
  /** Where the last fully checked block is kept; a restart resumes after it. */
  checkpoints?: CheckpointStore;
  /** Cap of the retry backoff; default 10 s. */
  maxBackoffMs?: number;
  logger: WatcherLogger;
  metrics?: VerifierMetrics;
}

export interface VerifierStats {
  running: boolean;
  verifiers: readonly Address[];
  share: number;
  /** Last block whose fulfilments were read. */
  scannedTo: bigint | undefined;
  /** Sampled results waiting to be re-executed (or to be challenged). */
  waiting: number;
  openDisputes: number;
  checked: number;
  matches: number;
  mismatches: number;
  unverifiable: number;
  challenges: number;
  votes: number;
  resolved: number;
  errors: number;
  consecutiveFailures: number;
  lastError: string | undefined;
}

interface Waiting {
  requestId: bigint;
  fulfillment: Fulfillment;
  blockNumber: bigint;
  /** Set once re-executed and found wrong: the hash to claim. */
  claimedHash?: Hex;
}

interface FollowedDispute {
  disputeId: bigint;
  requestId: bigint;
  /** Loaded when first needed. */
  request?: Request;
  fulfillment?: Fulfillment;
}

/** How many re-executed hashes are remembered (for votes on disputes opened by others). */
const ANSWER_CACHE_SIZE = 10_000;

export class Verifier extends BackgroundLoop {
  private readonly waiting = new Map<bigint, Waiting>();
  private readonly disputes = new Map<bigint, FollowedDispute>();
  private readonly answers = new Map<bigint, Recomputed>();
  private readonly requests = new Map<bigint, RequestedLog>();
  private scannedTo: bigint | undefined;
  private disputesScannedTo: bigint | undefined;
  private checkpointLoaded = false;
  private checkpointAhead = false;
  private recorded: bigint | undefined;
  private readonly counts = {
    checked: 0,
    matches: 0,
    mismatches: 0,
    unverifiable: 0,
    challenges: 0,
    votes: 0,
    resolved: 0,
    errors: 0,
  };
  private consecutiveFailures = 0;
  private lastError: string | undefined;

  constructor(private readonly opts: VerifierOptions) {
    super();
    if (opts.chain.verifiers.length === 0) throw new RangeError("a verifier needs at least one key");
    if (!(opts.share >= 0 && opts.share <= 1)) throw new RangeError("share must be in [0, 1]");
  }

  stats(): VerifierStats {
    return {
      running: this.running,
      verifiers: this.opts.chain.verifiers,
      share: this.opts.share,
      scannedTo: this.scannedTo,
      waiting: this.waiting.size,
      openDisputes: this.disputes.size,
      ...this.counts,
      consecutiveFailures: this.consecutiveFailures,
      lastError: this.lastError,
    };
  }

  /** Stop after the current step; resolves when the loop has ended and the models are closed. */
  override async stop(): Promise<void> {
    await super.stop();
    await this.opts.answers.close?.();
  }

  /**
   * One loop: read new fulfilments and disputes, re-execute and challenge, act on disputes,
   * record the checkpoint. Throws (after logging) when a step failed; what failed is retried.
   */
  async tick(): Promise<void> {
    const { opts } = this;
    if (!this.checkpointLoaded) {
      this.scannedTo = await opts.checkpoints?.get();
      this.recorded = this.scannedTo;
      this.checkpointLoaded = true;
      opts.logger.info(
        {
          verifiers: opts.chain.verifiers,
          share: opts.share,
          checkpoint: this.scannedTo?.toString() ?? null,
          startBlock: opts.startBlock.toString(),
        },
        this.scannedTo === undefined
          ? "verifier: no checkpoint, checking results from the start block"
          : "verifier: resuming from its checkpoint",
      );
    }
    const head = await opts.chain.getBlockNumber();
    await this.scanFulfilments(head);
    await this.scanDisputes(head);
    if (this.stopping) return;

    const [latest, window] = await Promise.all([opts.chain.getLatest(), opts.chain.getChallengeWindow()]);
    let failed: unknown;
    const ids = [...this.waiting.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const id of ids) {
      if (this.stopping) return;
      try {
        await this.check(this.waiting.get(id)!, latest.timestamp, window);
      } catch (err) {
        this.countError(err, { requestId: id.toString(), action: "verify" });
        failed = err;
      }
    }
    for (const d of [...this.disputes.values()]) {
      if (this.stopping) return;
      try {
        await this.followDispute(d, latest.number, latest.timestamp);
      } catch (err) {
        this.countError(err, {
          disputeId: d.disputeId.toString(),
          requestId: d.requestId.toString(),
          action: "dispute",
        });
        failed = err;
      }
    }
    opts.metrics?.openDisputes.set(this.disputes.size);
    await this.recordCheckpoint();
    if (failed !== undefined) throw new AlreadyCounted(failed);
  }

  private async scanFulfilments(head: bigint): Promise<void> {
    const { opts } = this;
    const ahead = this.scannedTo !== undefined && this.scannedTo > head;
    if (ahead && !this.checkpointAhead) {
      opts.logger.warn(
        { checkpoint: this.scannedTo?.toString(), head: head.toString() },
        "verifier: checkpoint is past the chain head; waiting for the chain to catch up " +
          "(if the chain was reset, delete the verifier's checkpoint key and restart)",
      );
    }
    this.checkpointAhead = ahead;
    for (;;) {
      const range = nextRange(this.scannedTo, head, opts.confirmations, opts.logChunkBlocks, opts.startBlock);
      if (range === undefined) return;
      for (const e of await opts.chain.getFulfilled(range.fromBlock, range.toBlock)) this.observe(e);
      this.scannedTo = range.toBlock;
      if (this.stopping) return;
    }
  }

  private observe(e: FulfilledEvent): void {
    const { opts } = this;
    const requestId = e.requestId.toString();
    const kind = classifyStatus(e.status);
    if (kind === "offchain") {
      opts.metrics?.skipped.inc({ reason: "offchain" });
      opts.logger.info(
        { requestId, node: e.fulfillment.node },
        "verifier: off-chain result (SuccessOffchain) not re-executed; only inline results are checked",
      );
      return;
    }
    if (kind === "errorStatus") {
      opts.metrics?.skipped.inc({ reason: "error_status" });
      opts.logger.debug({ requestId, status: e.status }, "verifier: error answer, nothing to dispute");
      return;
    }
    if (!isSampled(opts.samplingSecret, e.requestId, opts.share)) {
      opts.metrics?.skipped.inc({ reason: "not_sampled" });
      opts.logger.debug({ requestId }, "verifier: result not in this node's sample");
      return;
    }
    if (!this.waiting.has(e.requestId)) {
      this.waiting.set(e.requestId, {
        requestId: e.requestId,
        fulfillment: e.fulfillment,
        blockNumber: e.blockNumber,
      });
    }
  }

  private async scanDisputes(head: bigint): Promise<void> {
    const { opts } = this;
    for (;;) {
      const range = nextRange(
        this.disputesScannedTo,
        head,
        opts.confirmations,
        opts.logChunkBlocks,
        opts.startBlock,
      );
      if (range === undefined) return;
      for (const e of await opts.chain.getOpened(range.fromBlock, range.toBlock)) {
        if (!same(e.source, opts.chain.hub)) {
          opts.logger.debug(
            { disputeId: e.disputeId.toString(), source: e.source },
            "verifier: dispute from another source (not a hub result); not followed",
          );
          continue;
        }
        if (!this.disputes.has(e.disputeId)) {
          this.disputes.set(e.disputeId, { disputeId: e.disputeId, requestId: e.subjectId });
          opts.logger.info(
            {
              disputeId: e.disputeId.toString(),
              requestId: e.subjectId.toString(),
              challenger: e.challenger,
              accused: e.accused,
            },
            "verifier: following a dispute",
          );
        }
      }
      this.disputesScannedTo = range.toBlock;
      if (this.stopping) return;
    }
  }

  /** Re-execute one sampled result and challenge it if it is wrong; drop it once decided. */
  private async check(w: Waiting, now: bigint, window: bigint): Promise<void> {
    const { opts } = this;
    const requestId = w.requestId.toString();
    if (!challengeWindowOpen(w.fulfillment.fulfilledAt, window, now)) {
      this.waiting.delete(w.requestId);
      opts.metrics?.skipped.inc({ reason: "window_closed" });
      const log = w.claimedHash === undefined ? opts.logger.debug : opts.logger.warn;
      log.call(
        opts.logger,
        { requestId, node: w.fulfillment.node },
        w.claimedHash === undefined
          ? "verifier: challenge window already closed; result not checked"
          : "verifier: challenge window closed before the challenge landed",
      );
      return;
    }
    if (w.claimedHash === undefined && (await this.requestOf(w.requestId)).request.redundancy > 1) {
      // A redundant result is judged by its own nodes' agreement; dissenters are slashed there.
      this.waiting.delete(w.requestId);
      opts.metrics?.skipped.inc({ reason: "redundant" });
      opts.logger.debug({ requestId }, "verifier: redundant request, settled by agreement");
      return;
    }
    if (w.claimedHash === undefined) {
      const answer = await this.answerFor(w.requestId);
      this.counts.checked += 1;
      if ("unverifiable" in answer) {
        this.counts.unverifiable += 1;
        opts.metrics?.checked.inc({ outcome: "unverifiable" });
        opts.logger.warn(
          { requestId, node: w.fulfillment.node, reason: answer.unverifiable },
          "verifier: cannot check this result",
        );
        this.waiting.delete(w.requestId);
        return;
      }
      if (answer.outputHash === w.fulfillment.outputHash) {
        this.counts.matches += 1;
        opts.metrics?.checked.inc({ outcome: "match" });
        opts.logger.info(
          { requestId, node: w.fulfillment.node, outputHash: answer.outputHash },
          "verifier: result verified",
        );
        this.waiting.delete(w.requestId);
        return;
      }
      this.counts.mismatches += 1;
      opts.metrics?.checked.inc({ outcome: "mismatch" });
      opts.logger.warn(
        {
          requestId,
          node: w.fulfillment.node,
          outputHash: w.fulfillment.outputHash,
          computedHash: answer.outputHash,
        },
        "verifier: wrong result; challenging it",
      );
      w.claimedHash = answer.outputHash;
    }
    await this.challenge(w, w.claimedHash);
  }

  private async challenge(w: Waiting, claimedHash: Hex): Promise<void> {
    const { opts } = this;
    const requestId = w.requestId.toString();
    const logged = await this.requestOf(w.requestId);
    const refused: Address[] = [];
    for (const from of opts.chain.verifiers) {
      try {
        const { tx, disputeId } = await opts.chain.challenge(
          from,
          logged.request,
          w.fulfillment,
          claimedHash,
        );
        this.waiting.delete(w.requestId);
        this.counts.challenges += 1;
        opts.metrics?.challenges.inc({ result: "opened" });
        if (!this.disputes.has(disputeId))
          this.disputes.set(disputeId, { disputeId, requestId: w.requestId, request: logged.request });
        opts.logger.info(
          { requestId, disputeId: disputeId.toString(), challenger: from, claimedHash, tx },
          "verifier: challenge opened",
        );
        return;
      } catch (err) {
        const revert = decodeRevert(err);
        switch (revert?.name) {
          case "Settlement__NotVerifier":
            refused.push(from); // jailed, unbonded or never registered: the next identity tries
            continue;
          case "Settlement__AlreadyChallenged":
            this.waiting.delete(w.requestId);
            opts.metrics?.challenges.inc({ result: "already_challenged" });
            opts.logger.info(
              { requestId, disputeId: String(revert.args[1]) },
              "verifier: someone else challenged this result first",
            );
            return;
          case "Settlement__ChallengeWindowClosed":
            this.waiting.delete(w.requestId);
            opts.metrics?.challenges.inc({ result: "window_closed" });
            opts.logger.warn({ requestId }, "verifier: challenge window closed before the challenge landed");
            return;
          case "Hub__WrongState":
            // Finalised, refunded or challenged in the meantime: nothing left for us to do.
            this.waiting.delete(w.requestId);
            opts.logger.info(
              { requestId, state: Number(revert.args[1]) },
              "verifier: the result is no longer open to challenge",
            );
            return;
          default:
            throw err;
        }
      }
    }
    this.waiting.delete(w.requestId);
    opts.metrics?.challenges.inc({ result: "failed" });
    this.countError(new Error("none of this node's keys is an active VERIFIER node"), {
      requestId,
      verifiers: refused,
      action: "challenge",
    });
  }

  private async followDispute(d: FollowedDispute, head: bigint, now: bigint): Promise<void> {
    const { opts } = this;
    const ids = { disputeId: d.disputeId.toString(), requestId: d.requestId.toString() };
    const view = await opts.chain.getDispute(d.disputeId);
    if (view.verdict !== 0) {
      this.disputes.delete(d.disputeId);
      opts.logger.info(
        { ...ids, verdict: verdictName(view.verdict), majorityHash: view.majorityHash },
        "verifier: dispute resolved",
      );
      return;
    }
    const ours = opts.chain.verifiers;
    const members = ours.filter((k) => view.committee.some((m) => same(m, k)));
    const voted: Address[] = [];
    for (const k of members) if (await opts.chain.hasVoted(d.disputeId, k)) voted.push(k);
    const actions = disputeActions(view, { head, now, ours, voted });
    for (const action of actions) {
      if (this.stopping) return;
      if (action.kind === "draw") await this.draw(d);
      else if (action.kind === "vote") await this.vote(d, action.voter);
      else await this.resolve(d);
    }
  }

  private async draw(d: FollowedDispute): Promise<void> {
    const { opts } = this;
    const ids = { disputeId: d.disputeId.toString(), requestId: d.requestId.toString() };
    try {
      const tx = await opts.chain.drawCommittee(opts.chain.verifiers[0]!, d.disputeId);
      opts.logger.info({ ...ids, tx }, "verifier: committee drawn");
    } catch (err) {
      const name = decodeRevert(err)?.name;
      if (name === "Settlement__CommitteeAlreadyDrawn" || name === "Settlement__DisputeEnded") return;
      throw err;
    }
  }

  private async vote(d: FollowedDispute, voter: Address): Promise<void> {
    const { opts } = this;
    const ids = { disputeId: d.disputeId.toString(), requestId: d.requestId.toString() };
    const answer = await this.answerFor(d.requestId);
    if ("unverifiable" in answer) {
      // Abstaining costs the absent penalty; voting a hash we did not compute would be worse.
      opts.logger.error(
        { ...ids, voter, reason: answer.unverifiable },
        "verifier: on the committee but cannot compute the answer; not voting",
      );
      return;
    }
    try {
      const tx = await opts.chain.vote(voter, d.disputeId, answer.outputHash);
      this.counts.votes += 1;
      opts.metrics?.votes.inc();
      opts.logger.info({ ...ids, voter, outputHash: answer.outputHash, tx }, "verifier: vote cast");
    } catch (err) {
      const name = decodeRevert(err)?.name;
      if (
        name === "Settlement__AlreadyVoted" ||
        name === "Settlement__VotingClosed" ||
        name === "Settlement__DisputeEnded"
      )
        return;
      throw err;
    }
  }

  private async resolve(d: FollowedDispute): Promise<void> {
    const { opts } = this;
    const ids = { disputeId: d.disputeId.toString(), requestId: d.requestId.toString() };
    const request = d.request ?? (d.request = (await this.requestOf(d.requestId)).request);
    let fulfillment = d.fulfillment;
    if (fulfillment === undefined) {
      fulfillment = await opts.chain.findFulfillment(d.requestId);
      if (fulfillment === undefined) throw new Error(`no InferenceFulfilled log for request ${d.requestId}`);
      d.fulfillment = fulfillment;
    }
    try {
      const { tx, verdict } = await opts.chain.resolveChallenge(
        opts.chain.verifiers[0]!,
        request,
        fulfillment,
      );
      this.disputes.delete(d.disputeId);
      this.counts.resolved += 1;
      const name = verdictName(verdict);
      opts.metrics?.resolved.inc({ verdict: name });
      opts.logger.info({ ...ids, verdict: name, tx }, "verifier: dispute resolved");
    } catch (err) {
      const name = decodeRevert(err)?.name;
      if (name === "Settlement__DisputeEnded") {
        this.disputes.delete(d.disputeId);
        return;
      }
      if (name === "Settlement__VotingOpen") return; // a vote is still coming; next loop
      throw err;
    }
  }

  private async requestOf(requestId: bigint): Promise<RequestedLog> {
    let logged = this.requests.get(requestId);
    if (logged === undefined) {
      logged = await this.opts.chain.findRequest(requestId);
      if (logged === undefined) throw new Error(`no InferenceRequested log for request ${requestId}`);
      this.remember(this.requests, requestId, logged);
    }
    return logged;
  }

  /** The hash this node computes for a request (re-executed once, then remembered). */
  private async answerFor(requestId: bigint): Promise<Recomputed> {
    const cached = this.answers.get(requestId);
    if (cached !== undefined) return cached;
    const logged = await this.requestOf(requestId);
    const inputUri = logged.request.inputIsRef
      ? Buffer.from(logged.input.slice(2), "hex").toString("utf8")
      : undefined;
    const answer = await this.opts.answers.compute(logged.request, logged.input, inputUri);
    this.remember(this.answers, requestId, answer);
    return answer;
  }

  private remember<T>(map: Map<bigint, T>, key: bigint, value: T): void {
    map.set(key, value);
    if (map.size > ANSWER_CACHE_SIZE) map.delete(map.keys().next().value!);
  }

  private async recordCheckpoint(): Promise<void> {
    const { opts } = this;
    if (this.scannedTo === undefined || opts.checkpoints === undefined) return;
    const at = checkpointAfter(
      this.scannedTo,
      [...this.waiting.values()].map((w) => w.blockNumber),
    );
    if (at === this.recorded || at < 0n) return;
    try {
      await opts.checkpoints.set(at);
      this.recorded = at;
    } catch (err) {
      opts.logger.warn({ err: errorMessage(err) }, "verifier: cannot record its checkpoint");
    }
  }

  private countError(err: unknown, context: object): void {
    this.counts.errors += 1;
    this.opts.metrics?.errors.inc();
    this.lastError = errorMessage(err);
    this.opts.logger.error({ ...context, err: this.lastError }, "verifier: step failed; retrying next loop");
  }

  protected async run(): Promise<void> {
    const { opts } = this;
    while (!this.stopping) {
      let delay = opts.intervalMs;
      try {
        await this.tick();
        if (this.consecutiveFailures > 0) opts.logger.info({}, "verifier recovered");
        this.consecutiveFailures = 0;
        this.lastError = undefined;
      } catch (err) {
        this.consecutiveFailures += 1;
        if (!(err instanceof AlreadyCounted)) this.countError(err, { action: "loop" });
        delay = backoffDelay(this.consecutiveFailures, Math.max(opts.intervalMs, 250), opts.maxBackoffMs);
      }
      if (!this.stopping) await this.sleep(delay);
    }
  }
}

function verdictName(verdict: number): DisputeVerdictName {
  return DisputeVerdict[verdict] ?? "Pending";
}

/** A failure already logged and counted, rethrown only to make the loop back off. */
class AlreadyCounted extends Error {
  constructor(cause: unknown) {
    super(errorMessage(cause), { cause });
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return (err as Error & { shortMessage?: string }).shortMessage ?? err.message;
  return String(err);
}
