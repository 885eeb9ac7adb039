/**
 * The settlement keeper: finalises fulfilled requests once their challenge window has passed
 * (`Settlement.finalizeBatch`) and refunds pending requests once their deadline has passed
 * (`InferenceHub.refundExpired`), so that fees reach their owners without anyone calling by hand.
 *
 * It tracks the requests that are Pending or Fulfilled in memory, rebuilt at every start by
 * scanning the hub's InferenceRequested / InferenceFulfilled logs from the start block. Each loop
 * it scans the new blocks, reads the latest block's timestamp and the challenge window, picks what
 * is due (pure `dueActions`), re-checks each due request's state on chain (pure `recheck`),
 * simulates and sends. A result under dispute (Challenged) is held, not dropped: the keeper
 * finalises it once the dispute clears it (ChallengeCleared), and forgets it once it is overturned
 * (the hub has refunded the fee). A `Hub__WrongState` revert means someone else got there first:
 * the request is dropped as done, or held when the state is Challenged. Any other error is logged
 * and retried on the next loop, with backoff; the loop never throws.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import {
  createWalletClient,
  http,
  type Address,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
  type Account,
  type Chain,
} from "viem";
import { nonceManager, privateKeyToAccount } from "viem/accounts";
import {
  decodeRevert,
  inferenceHubAbi,
  settlementAbi,
  ResultStatus,
  type Fulfillment,
  type Request,
} from "../sdk";
import { backoffDelay, nextRange, type CheckpointStore, type WatcherLogger } from "./watcher";
import { BackgroundLoop } from "./loop";

// ------------------------------------------------------------------------------- pure core

/** A request the keeper may still have to act on. */
export interface TrackedRequest {
  request: Request;
  /** Challenged: a verifier disputes the result; nothing to do until the dispute ends. */
  state: "Pending" | "Fulfilled" | "Challenged";
  /** Set once the request is Fulfilled (and kept while it is Challenged). */
  fulfillment?: Fulfillment;
}

export interface DueActions {
  /** Fulfilled, `fulfilledAt + challengeWindow <= now`: `Settlement.finalize` would succeed. */
  finalize: (TrackedRequest & { fulfillment: Fulfillment })[];
  /** Pending, `deadline < now`: `InferenceHub.refundExpired` would succeed. (Challenged: neither.) */
  refund: TrackedRequest[];
}

/** What can be done now, in request-id order. Pure. */
export function dueActions(
  tracked: Iterable<TrackedRequest>,
  nowSeconds: bigint,
  challengeWindow: bigint,
): DueActions {
  const finalize: DueActions["finalize"] = [];
  const refund: TrackedRequest[] = [];
  for (const t of tracked) {
    if (t.state === "Fulfilled") {
      const f = t.fulfillment;
      if (f !== undefined && f.fulfilledAt + challengeWindow <= nowSeconds)
        finalize.push({ ...t, fulfillment: f });
    } else if (t.state === "Pending" && t.request.deadline < nowSeconds) {
      refund.push(t);
    }
  }
  const byId = (a: TrackedRequest, b: TrackedRequest) =>
    a.request.requestId < b.request.requestId ? -1 : a.request.requestId > b.request.requestId ? 1 : 0;
  return { finalize: finalize.sort(byId), refund: refund.sort(byId) };
}

/** `items` in consecutive chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError("size must be a positive integer");
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A hub event the keeper follows, in chain order. */
export type KeeperEvent =
  | { kind: "requested"; request: Request }
  | { kind: "fulfilled"; requestId: bigint; status: number; fulfillment: Fulfillment }
  /** ResultChallenged: held until the dispute ends. */
  | { kind: "challenged"; requestId: bigint }
  /** ChallengeCleared: the result stands and can be finalised again. */
  | { kind: "cleared"; requestId: bigint }
  /** InferenceOverturned: the fee went back to the requester; nothing left to settle. */
  | { kind: "overturned"; requestId: bigint };

/**
 * Apply one event to the tracked set (mutates it). A request answered with an error status is
 * Failed (final, already refunded by the hub) and is dropped; Success / SuccessOffchain make it
 * Fulfilled. A challenge holds a Fulfilled request (Challenged), a cleared challenge makes it
 * Fulfilled again, an overturned result is dropped. Events about a request never seen (scanned
 * from after its request) are ignored.
 */
export function applyEvent(tracked: Map<bigint, TrackedRequest>, event: KeeperEvent): void {
  if (event.kind === "requested") {
    if (!tracked.has(event.request.requestId))
      tracked.set(event.request.requestId, { request: event.request, state: "Pending" });
    return;
  }
  const t = tracked.get(event.requestId);
  if (t === undefined) return;
  switch (event.kind) {
    case "fulfilled":
      if (event.status === ResultStatus.Success || event.status === ResultStatus.SuccessOffchain) {
        tracked.set(event.requestId, {
          request: t.request,
          state: "Fulfilled",
          fulfillment: event.fulfillment,
        });
      } else {
        tracked.delete(event.requestId);
      }
      return;
    case "challenged":
      if (t.fulfillment !== undefined) t.state = "Challenged";
      return;
    case "cleared":
      if (t.fulfillment !== undefined) t.state = "Fulfilled";
      return;
    case "overturned":
      tracked.delete(event.requestId);
      return;
  }
}

/** RequestState numbers (sdk `RequestState`). */
const PENDING = 1;
const FULFILLED = 2;
const CHALLENGED = 6;

/**
 * What to do with a due request, given its state on chain now (a RequestState number):
 * `act` (it is still Fulfilled, or Pending, as the due action expects), `hold` (a due
 * finalisation whose result is Challenged: keep it, finalise after the dispute clears it), or
 * `done` (anything else: Finalized, Refunded, Failed, Overturned; someone else settled it). Pure.
 */
export function recheck(action: "finalize" | "refund", state: number): "act" | "hold" | "done" {
  if (action === "refund") return state === PENDING ? "act" : "done";
  if (state === FULFILLED) return "act";
  return state === CHALLENGED ? "hold" : "done";
}

/** Where the keeper records how far it has scanned (informational: it rescans at every start). */
export function keeperCheckpointKey(chainId: number, hub: Address): string {
  return `gradnet:keeper:${chainId}:${hub.toLowerCase()}:checkpoint`;
}

/** The largest `finalizeBatch` the keeper sends. */
export const FINALIZE_BATCH_MAX = 32;

// -------------------------------------------------------------------------------- adapters

/** The keeper's window on the chain; `viemKeeperChain` is the real one. */
export interface KeeperChain {
  readonly hub: Address;
  readonly keeper: Address;
  getBlockNumber(): Promise<bigint>;
  /** The latest block's timestamp, unix seconds. */
  getLatestTimestamp(): Promise<bigint>;
  /**
   * The hub's InferenceRequested, InferenceFulfilled, ResultChallenged, ChallengeCleared and
   * InferenceOverturned logs in [fromBlock, toBlock], in chain order.
   */
  getEvents(fromBlock: bigint, toBlock: bigint): Promise<KeeperEvent[]>;
  /** `Settlement.params().challengeWindow`, seconds. */
  getChallengeWindow(): Promise<bigint>;
  getRequestState(requestId: bigint): Promise<number>;
  /** Simulate, send and wait for `finalizeBatch`; throws (a viem error) on a revert. */
  finalizeBatch(requests: Request[], fulfillments: Fulfillment[]): Promise<Hex>;
  /** Simulate, send and wait for `refundExpired`; throws (a viem error) on a revert. */
  refundExpired(request: Request): Promise<Hex>;
  /**
   * A redundant request: pay the nodes whose answer was the agreed one
   * (`Settlement.finalizeRedundant`) and slash those whose answer differed
   * (`Settlement.slashDissenter`). Throws (a viem error) on a revert.
   */
  finalizeRedundant(request: Request, fulfillment: Fulfillment): Promise<Hex>;
}

/** Split a redundant request's answerers by whether their answer is the agreed one. Pure. */
export function splitAnswers(
  answers: readonly { node: Address; key: Hex }[],
  agreedKey: Hex,
): { agreeing: Address[]; dissenting: Address[] } {
  const agreeing: Address[] = [];
  const dissenting: Address[] = [];
  for (const a of answers) (a.key === agreedKey ? agreeing : dissenting).push(a.node);
  return { agreeing, dissenting };
}

/** The settlement ABI plus the hub's errors, so a revert inside `hub.release` decodes. */
const settlementWithHubErrors = [
  ...settlementAbi,
  ...inferenceHubAbi.filter((e) => e.type === "error"),
] as const;

export function viemKeeperChain(opts: {
  publicClient: PublicClient;
  rpcUrl: string;
  chain?: Chain;
  privateKey: Hex;
  hub: Address;
  settlement: Address;
}): KeeperChain {
  const { publicClient, hub, settlement } = opts;
  const account = privateKeyToAccount(opts.privateKey, { nonceManager });
  const wallet: WalletClient<Transport, Chain | undefined, Account> = createWalletClient({
    account,
    chain: opts.chain,
    transport: http(opts.rpcUrl, { retryCount: 2, timeout: 30_000 }),
  });

  const send = async (request: Parameters<typeof wallet.writeContract>[0]): Promise<Hex> => {
    const hash = await wallet.writeContract(request);
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
    if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
    return hash;
  };

  return {
    hub,
    keeper: account.address,
    getBlockNumber: () => publicClient.getBlockNumber({ cacheTime: 0 }),
    async getLatestTimestamp() {
      return (await publicClient.getBlock({ blockTag: "latest" })).timestamp;
    },
    async getEvents(fromBlock, toBlock) {
      const logs = await publicClient.getContractEvents({
        address: hub,
        abi: inferenceHubAbi,
        fromBlock,
        toBlock,
        strict: true,
      });
      const events: KeeperEvent[] = [];
      for (const log of logs) {
        if (log.eventName === "InferenceRequested") {
          events.push({ kind: "requested", request: log.args.request as Request });
        } else if (log.eventName === "InferenceFulfilled") {
          const { requestId, node, status, outputHash, fulfilledAt } = log.args;
          events.push({
            kind: "fulfilled",
            requestId,
            status,
            fulfillment: { node, outputHash, fulfilledAt },
          });
        } else if (log.eventName === "ResultChallenged") {
          events.push({ kind: "challenged", requestId: log.args.requestId });
        } else if (log.eventName === "ChallengeCleared") {
          events.push({ kind: "cleared", requestId: log.args.requestId });
        } else if (log.eventName === "InferenceOverturned") {
          events.push({ kind: "overturned", requestId: log.args.requestId });
        }
      }
      return events;
    },
    async getChallengeWindow() {
      const params = await publicClient.readContract({
        address: settlement,
        abi: settlementAbi,
        functionName: "params",
      });
      return BigInt(params.challengeWindow);
    },
    getRequestState: (requestId) =>
      publicClient.readContract({
        address: hub,
        abi: inferenceHubAbi,
        functionName: "requestState",
        args: [requestId],
      }),
    async finalizeBatch(requests, fulfillments) {
      const { request } = await publicClient.simulateContract({
        account,
        address: settlement,
        abi: settlementWithHubErrors,
        functionName: "finalizeBatch",
        args: [requests, fulfillments],
      });
      return send(request as Parameters<typeof wallet.writeContract>[0]);
    },
    async finalizeRedundant(req, fulfillment) {
      const id = req.requestId;
      const read = { address: hub, abi: inferenceHubAbi } as const;
      const agreement = await publicClient.readContract({ ...read, functionName: "agreementOf", args: [id] });
      const logs = await publicClient.getContractEvents({
        ...read,
        eventName: "AnswerSubmitted",
        args: { requestId: id },
        fromBlock: 0n,
        strict: true,
      });
      const answers = await Promise.all(
        logs.map(async (l) => ({
          node: l.args.node,
          key: await publicClient.readContract({
            ...read,
            functionName: "answerOf",
            args: [id, l.args.node],
          }),
        })),
      );
      const { agreeing, dissenting } = splitAnswers(answers, agreement.agreedKey);
      const { request } = await publicClient.simulateContract({
        account,
        address: settlement,
        abi: settlementWithHubErrors,
        functionName: "finalizeRedundant",
        args: [req, fulfillment, agreeing],
      });
      const hash = await send(request as Parameters<typeof wallet.writeContract>[0]);
      for (const node of dissenting) {
        try {
          const sim = await publicClient.simulateContract({
            account,
            address: settlement,
            abi: settlementWithHubErrors,
            functionName: "slashDissenter",
            args: [id, node],
          });
          await send(sim.request as Parameters<typeof wallet.writeContract>[0]);
        } catch (err) {
          // Someone slashed it first: nothing to do.
          if (decodeRevert(err)?.name !== "Settlement__NotDissenter") throw err;
        }
      }
      return hash;
    },
    async refundExpired(req) {
      const { request } = await publicClient.simulateContract({
        account,
        address: hub,
        abi: inferenceHubAbi,
        functionName: "refundExpired",
        args: [req],
      });
      return send(request as Parameters<typeof wallet.writeContract>[0]);
    },
  };
}

export interface KeeperMetrics {
  finalized: Counter;
  refunded: Counter;
  errors: Counter;
  tracked: Gauge;
  held: Counter;
}

/** The keeper's metrics, in the relayer's registry. */
export function createKeeperMetrics(registry: Registry): KeeperMetrics {
  const registers = [registry];
  return {
    finalized: new Counter({
      name: "gradnet_keeper_finalized_total",
      help: "Requests the keeper finalised (Settlement.finalizeBatch)",
      registers,
    }),
    refunded: new Counter({
      name: "gradnet_keeper_refunded_total",
      help: "Expired requests the keeper refunded (InferenceHub.refundExpired)",
      registers,
    }),
    errors: new Counter({
      name: "gradnet_keeper_errors_total",
      help: "Failed keeper loops or transactions (each is retried)",
      registers,
    }),
    tracked: new Gauge({
      name: "gradnet_keeper_tracked",
      help: "Pending, Fulfilled or Challenged requests the keeper tracks",
      registers,
    }),
    held: new Counter({
      name: "gradnet_keeper_held_total",
      help: "Due finalisations put on hold because the result is under dispute (Challenged)",
      registers,
    }),
  };
}

export interface KeeperOptions {
  chain: KeeperChain;
  startBlock: bigint;
  confirmations: number;
  logChunkBlocks: number;
  intervalMs: number;
  /** Where the scanned-up-to block is recorded (written only; every start rescans). */
  checkpoints?: CheckpointStore;
  /** Cap of the retry backoff; default 10 s. */
  maxBackoffMs?: number;
  logger: WatcherLogger;
  metrics?: KeeperMetrics;
}

export interface KeeperStats {
  running: boolean;
  keeper: Address;
  /** Last block scanned. */
  scannedTo: bigint | undefined;
  tracked: number;
  finalized: number;
  refunded: number;
  /** Due requests someone else settled first (dropped without a transaction of ours). */
  settledByOthers: number;
  /** Due finalisations held because their result was under dispute. */
  held: number;
  errors: number;
  consecutiveFailures: number;
  lastError: string | undefined;
}

export class Keeper extends BackgroundLoop {
  private readonly tracked = new Map<bigint, TrackedRequest>();
  private scannedTo: bigint | undefined;
  /** The block last written to the checkpoint store. */
  private recorded: bigint | undefined;
  private readonly counts = { finalized: 0, refunded: 0, settledByOthers: 0, held: 0, errors: 0 };
  private consecutiveFailures = 0;
  private lastError: string | undefined;

  constructor(private readonly opts: KeeperOptions) {
    super();
  }

  stats(): KeeperStats {
    return {
      running: this.running,
      keeper: this.opts.chain.keeper,
      scannedTo: this.scannedTo,
      tracked: this.tracked.size,
      ...this.counts,
      consecutiveFailures: this.consecutiveFailures,
      lastError: this.lastError,
    };
  }

  /** One loop: scan new blocks, then settle what is due. Throws on an RPC failure. */
  async tick(): Promise<void> {
    const { opts } = this;
    const head = await opts.chain.getBlockNumber();
    for (;;) {
      const range = nextRange(this.scannedTo, head, opts.confirmations, opts.logChunkBlocks, opts.startBlock);
      if (range === undefined) break;
      for (const event of await opts.chain.getEvents(range.fromBlock, range.toBlock))
        applyEvent(this.tracked, event);
      this.scannedTo = range.toBlock;
      if (this.stopping) return;
    }
    if (this.scannedTo !== undefined && this.scannedTo !== this.recorded) {
      const block = this.scannedTo;
      await opts.checkpoints
        ?.set(block)
        .then(() => {
          this.recorded = block;
        })
        .catch((err: unknown) => {
          opts.logger.warn({ err: errorMessage(err) }, "keeper: cannot record its checkpoint");
        });
    }
    this.observeTracked();

    const [now, window] = await Promise.all([
      opts.chain.getLatestTimestamp(),
      opts.chain.getChallengeWindow(),
    ]);
    const due = dueActions(this.tracked.values(), now, window);
    let failed: unknown;

    // finalise
    const toFinalize: DueActions["finalize"] = [];
    for (const t of due.finalize) {
      const id = t.request.requestId;
      const state = await opts.chain.getRequestState(id);
      const next = recheck("finalize", state);
      if (next === "hold") this.hold(id);
      else if (next === "done") this.settledByOthers(id, state);
      else if (t.request.redundancy <= 1) toFinalize.push(t);
      else {
        try {
          const tx = await opts.chain.finalizeRedundant(t.request, t.fulfillment);
          this.tracked.delete(id);
          this.counts.finalized += 1;
          opts.metrics?.finalized.inc();
          opts.logger.info({ requestId: id.toString(), tx }, "keeper: finalised a redundant request");
        } catch (err) {
          if (wrongState(err) !== undefined) this.settledByOthers(id, undefined);
          else {
            this.countError(err, { requestId: id.toString(), action: "finalizeRedundant" });
            failed = err;
          }
        }
      }
    }
    for (const batch of chunks(toFinalize, FINALIZE_BATCH_MAX)) {
      if (this.stopping) return;
      try {
        await this.finalize(batch);
      } catch (err) {
        failed = err;
      }
    }

    // refund
    for (const t of due.refund) {
      if (this.stopping) return;
      const id = t.request.requestId;
      try {
        const state = await opts.chain.getRequestState(id);
        if (recheck("refund", state) !== "act") {
          this.settledByOthers(id, state);
          continue;
        }
        const tx = await opts.chain.refundExpired(t.request);
        this.tracked.delete(id);
        this.counts.refunded += 1;
        opts.metrics?.refunded.inc();
        opts.logger.info({ requestId: id.toString(), tx }, "keeper: refunded an expired request");
      } catch (err) {
        if (wrongState(err) !== undefined) this.settledByOthers(id, wrongState(err)?.state);
        else {
          this.countError(err, { requestId: id.toString(), action: "refundExpired" });
          failed = err;
        }
      }
    }
    this.observeTracked();
    if (failed !== undefined) throw new AlreadyCounted(failed);
  }

  /** Finalise one batch; a request someone else settled is dropped and the rest retried. */
  private async finalize(batch: DueActions["finalize"]): Promise<void> {
    const { opts } = this;
    let items = batch;
    while (items.length > 0) {
      try {
        const tx = await opts.chain.finalizeBatch(
          items.map((t) => t.request),
          items.map((t) => t.fulfillment),
        );
        for (const t of items) this.tracked.delete(t.request.requestId);
        this.counts.finalized += items.length;
        opts.metrics?.finalized.inc(items.length);
        opts.logger.info(
          { requestIds: items.map((t) => t.request.requestId.toString()), tx },
          `keeper: finalised ${items.length} request${items.length === 1 ? "" : "s"}`,
        );
        return;
      } catch (err) {
        const wrong = wrongState(err);
        const id = wrong?.requestId;
        if (wrong === undefined || !items.some((t) => t.request.requestId === id)) {
          this.countError(err, {
            requestIds: items.map((t) => t.request.requestId.toString()),
            action: "finalizeBatch",
          });
          throw err;
        }
        // Challenged between our state check and the transaction: held, not dropped.
        if (recheck("finalize", wrong.state) === "hold") this.hold(wrong.requestId);
        else this.settledByOthers(wrong.requestId, wrong.state);
        items = items.filter((t) => t.request.requestId !== id);
      }
    }
  }

  /** A due result is under dispute: keep it, as Challenged, until the dispute ends. */
  private hold(requestId: bigint): void {
    const t = this.tracked.get(requestId);
    if (t === undefined || t.state === "Challenged") return;
    t.state = "Challenged";
    this.counts.held += 1;
    this.opts.metrics?.held.inc();
    this.opts.logger.info(
      { requestId: requestId.toString() },
      "keeper: result under dispute; finalising it waits until the dispute clears it",
    );
  }

  private settledByOthers(requestId: bigint, state: number | undefined): void {
    if (!this.tracked.delete(requestId)) return;
    this.counts.settledByOthers += 1;
    this.opts.logger.debug(
      { requestId: requestId.toString(), state: state ?? null },
      "keeper: request already settled by someone else; dropped",
    );
  }

  private countError(err: unknown, context: object): void {
    this.counts.errors += 1;
    this.opts.metrics?.errors.inc();
    this.lastError = errorMessage(err);
    this.opts.logger.error(
      { ...context, err: this.lastError },
      "keeper: transaction failed; retrying next loop",
    );
  }

  private observeTracked(): void {
    this.opts.metrics?.tracked.set(this.tracked.size);
  }

  protected async run(): Promise<void> {
    const { opts } = this;
    opts.logger.info(
      { keeper: opts.chain.keeper, startBlock: opts.startBlock.toString() },
      "keeper: scanning from the start block",
    );
    while (!this.stopping) {
      let delay = opts.intervalMs;
      try {
        await this.tick();
        if (this.consecutiveFailures > 0) opts.logger.info({}, "keeper recovered");
        this.consecutiveFailures = 0;
        this.lastError = undefined;
      } catch (err) {
        this.consecutiveFailures += 1;
        if (!(err instanceof AlreadyCounted)) {
          this.countError(err, { action: "loop" });
        }
        delay = backoffDelay(this.consecutiveFailures, Math.max(opts.intervalMs, 250), opts.maxBackoffMs);
      }
      if (!this.stopping) await this.sleep(delay);
    }
  }
}

/** A failure already logged and counted, rethrown only to make the loop back off. */
class AlreadyCounted extends Error {
  constructor(cause: unknown) {
    super(errorMessage(cause), { cause });
  }
}

/** The request id and state of a `Hub__WrongState(requestId, state)` revert, else undefined. */
export function wrongState(err: unknown): { requestId: bigint; state: number } | undefined {
  const revert = decodeRevert(err);
  if (revert?.name !== "Hub__WrongState") return undefined;
  const [requestId, state] = revert.args;
  return typeof requestId === "bigint" && typeof state === "number" ? { requestId, state } : undefined;
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return (err as Error & { shortMessage?: string }).shortMessage ?? err.message;
  return String(err);
}
