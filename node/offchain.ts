/**
 * Off-chain inference (`POST /inference`): a payer's signed request is checked, run at once with
 * the worker's own code, answered over HTTP, and handed to the batch poster, which commits it in
 * a Merkle batch paid from the payer's BatchSettlement deposit (docs/relayer.md, "Off-chain
 * inference"; docs/protocol.md, "Batch settlement").
 *
 * Pure core: `parseOffchainRequest`, `fundsAvailable`, `FeeReservations`. Adapters: the chain
 * (`OffchainChain`, `viemOffchainChain`), the used nonces (`NonceStore`, `redisNonceStore`), the
 * models (`ModelCache` + `computeAnswer`), and `OffchainService`, which puts them together.
 */
import { Counter, Histogram, type Registry } from "prom-client";
import { isAddress, isHex, verifyTypedData, type Address, type Hex, type PublicClient } from "viem";
import { FetchError, ModelSchemaError, computeAnswer, type LoadedModel } from "../inference-worker";
import {
  GradnetError,
  ModelHashMismatchError,
  batchSettlementAbi,
  decodeTensors,
  inputHash,
  modelRegistryAbi,
  offchainRequestId,
  offchainTypedData,
  toGradnetError,
  type ModelInfo,
  type NamedTensor,
  type OffchainDomain,
  type OffchainInference,
  type OffchainInfo,
  type OffchainRequestBody,
} from "../sdk";
import type { BatchResult } from "./batchPoster";
import type { WatcherLogger } from "./watcher";

const UINT256_MAX = (1n << 256n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

// ------------------------------------------------------------------------------- outcomes

/** How a request ended; the label of `gradnet_offchain_requests_total`. */
export const OFFCHAIN_OUTCOMES = [
  "served",
  "bad_request",
  "bad_signature",
  "expired",
  "nonce_used",
  "unknown_model",
  "model_deprecated",
  "fee_too_low",
  "insufficient_funds",
  "invalid_input",
  "model_failed",
  "unavailable",
  "error",
] as const;
export type OffchainOutcome = (typeof OFFCHAIN_OUTCOMES)[number];

/** A request refused (or failed) with an HTTP status; no fee is charged. */
export class OffchainRequestError extends GradnetError {
  constructor(
    readonly status: number,
    code: string,
    readonly outcome: OffchainOutcome,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

// ------------------------------------------------------------------------------ pure core

/** A request body with its numbers parsed and the typed data the payer signed. */
export interface OffchainRequest {
  payer: Address;
  input: Hex;
  signature: Hex;
  message: OffchainInference;
  requestId: bigint;
}

const decimalUint = (field: string, text: string, max: bigint): bigint => {
  if (!/^[0-9]{1,78}$/.test(text))
    throw new OffchainRequestError(400, "BAD_REQUEST", "bad_request", `${field} must be a decimal integer`);
  const v = BigInt(text);
  if (v > max)
    throw new OffchainRequestError(400, "BAD_REQUEST", "bad_request", `${field} ${text} is out of range`);
  return v;
};

/**
 * Check the shape of a `POST /inference` body and build the message its signature must cover,
 * for node `node`. Pure; throws OffchainRequestError (400).
 */
export function parseOffchainRequest(body: OffchainRequestBody, node: Address): OffchainRequest {
  const bad = (message: string) => new OffchainRequestError(400, "BAD_REQUEST", "bad_request", message);
  if (!isAddress(body.payer, { strict: false })) throw bad(`payer ${body.payer} is not an address`);
  if (!isHex(body.modelId, { strict: true }) || body.modelId.length !== 66)
    throw bad("modelId must be 32 bytes of hex");
  if (!isHex(body.input, { strict: true }) || body.input.length % 2 !== 0)
    throw bad("input must be 0x-prefixed hex bytes");
  if (!isHex(body.signature, { strict: true })) throw bad("signature must be 0x-prefixed hex");
  if (!Number.isSafeInteger(body.expiry) || body.expiry < 0) throw bad("expiry must be unix seconds");
  const expiry = BigInt(body.expiry);
  if (expiry > UINT64_MAX) throw bad("expiry does not fit uint64");
  const nonce = decimalUint("nonce", body.nonce, UINT256_MAX);
  const maxFee = decimalUint("maxFee", body.maxFee, UINT256_MAX);
  const message: OffchainInference = {
    node,
    modelId: body.modelId.toLowerCase() as Hex,
    inputHash: inputHash(body.input),
    maxFee,
    nonce,
    expiry,
  };
  return {
    payer: body.payer,
    input: body.input,
    signature: body.signature,
    message,
    requestId: offchainRequestId(body.payer, nonce),
  };
}

/**
 * What this node may still charge a payer: the smaller of the deposit and the node's allowance
 * (type(uint256).max is unlimited), less what it has already accepted and not yet posted.
 * Negative when more is pending than the chain allows (a withdrawal or a lowered allowance).
 */
export function fundsAvailable(opts: { deposit: bigint; allowance: bigint; pending: bigint }): bigint {
  const cap = opts.allowance < opts.deposit ? opts.allowance : opts.deposit;
  return cap - opts.pending;
}

/**
 * Fees of requests being served right now (checked, not yet handed to the batch poster), per
 * payer. Checking and reserving happen in one synchronous step, so two requests of one payer
 * can never both spend the same wei. Pure in-memory state.
 */
export class FeeReservations {
  private readonly reserved = new Map<string, bigint>();

  of(payer: Address): bigint {
    return this.reserved.get(payer.toLowerCase()) ?? 0n;
  }

  /**
   * Reserve `fee` for `payer` if `available` (what the chain allows less what the poster holds)
   * covers it on top of what is already reserved. Returns false, reserving nothing, otherwise.
   */
  tryReserve(payer: Address, fee: bigint, available: bigint): boolean {
    const held = this.of(payer);
    if (held + fee > available) return false;
    this.reserved.set(payer.toLowerCase(), held + fee);
    return true;
  }

  release(payer: Address, fee: bigint): void {
    const left = this.of(payer) - fee;
    if (left < 0n) throw new RangeError(`released more than was reserved for ${payer}`);
    if (left === 0n) this.reserved.delete(payer.toLowerCase());
    else this.reserved.set(payer.toLowerCase(), left);
  }
}

// ------------------------------------------------------------------------------- adapters

/** What the service reads from the chain. */
export interface OffchainChain {
  /** The registered model, or undefined when it is not registered. */
  getModel(modelId: Hex): Promise<ModelInfo | undefined>;
  depositOf(payer: Address): Promise<bigint>;
  allowance(payer: Address, node: Address): Promise<bigint>;
}

export function viemOffchainChain(opts: {
  publicClient: Pick<PublicClient, "readContract">;
  modelRegistry: Address;
  batchSettlement: Address;
}): OffchainChain {
  const { publicClient } = opts;
  const bs = { address: opts.batchSettlement, abi: batchSettlementAbi } as const;
  return {
    async getModel(modelId) {
      try {
        return (await publicClient.readContract({
          address: opts.modelRegistry,
          abi: modelRegistryAbi,
          functionName: "getModel",
          args: [modelId],
        })) as ModelInfo;
      } catch (err) {
        const e = toGradnetError(err);
        if (e instanceof GradnetError && e.code === "MODEL_NOT_FOUND") return undefined;
        throw e;
      }
    },
    depositOf: (payer) => publicClient.readContract({ ...bs, functionName: "depositOf", args: [payer] }),
    allowance: (payer, node) =>
      publicClient.readContract({ ...bs, functionName: "allowance", args: [payer, node] }),
  };
}

/** The nonces each payer has used with this node. `claim` is atomic. */
export interface NonceStore {
  /** Mark `nonce` used; false when it already was. */
  claim(payer: Address, nonce: bigint): Promise<boolean>;
  /** Forget a claim whose request was refused, so the same signed request may be sent again. */
  release(payer: Address, nonce: bigint): Promise<void>;
}

/** The Redis set of nonces `payer` has used with `node` on this chain's BatchSettlement. */
export function offchainNonceKey(
  chainId: number,
  batchSettlement: Address,
  node: Address,
  payer: Address,
): string {
  return `gradnet:offchain:${chainId}:${batchSettlement.toLowerCase()}:${node.toLowerCase()}:nonces:${payer.toLowerCase()}`;
}

export function redisNonceStore(
  redis: {
    sadd(key: string, member: string): Promise<number>;
    srem(key: string, member: string): Promise<number>;
  },
  keyOf: (payer: Address) => string,
): NonceStore {
  return {
    claim: async (payer, nonce) => (await redis.sadd(keyOf(payer), nonce.toString())) === 1,
    release: async (payer, nonce) => {
      await redis.srem(keyOf(payer), nonce.toString());
    },
  };
}

export interface OffchainMetrics {
  requests: Counter<"outcome">;
  duration: Histogram<"outcome">;
}

export function createOffchainMetrics(registry: Registry): OffchainMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: "gradnet_offchain_requests_total",
      help: "POST /inference requests by outcome (served: answered and charged to a batch)",
      labelNames: ["outcome"] as const,
      registers,
    }),
    duration: new Histogram({
      name: "gradnet_offchain_request_duration_seconds",
      help: "Time to check, run and answer one off-chain request, by outcome",
      labelNames: ["outcome"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}

/** The answer of `POST /inference`. */
export interface OffchainAnswer {
  requestId: string;
  payer: Address;
  node: Address;
  modelId: Hex;
  inputHash: Hex;
  outputHash: Hex;
  output: Hex;
  outputs: NamedTensor[];
  /** What the payer is charged, wei (the model's fee). */
  fee: string;
  batch: "pending";
}

export interface OffchainServiceOptions {
  domain: OffchainDomain;
  /** The inference node whose key posts the batches (the typed data's `node`). */
  node: Address;
  chain: OffchainChain;
  nonces: NonceStore;
  models: { get(modelId: Hex): Promise<LoadedModel> };
  /** The batch poster: what it holds for a payer, and where a served result goes. */
  poster: {
    pendingFees(payer: Address): bigint;
    add(payer: Address, modelId: Hex, result: BatchResult): void;
  };
  batchPolicy: { maxLeaves: number; maxWaitMs: number };
  logger: WatcherLogger;
  metrics?: OffchainMetrics;
  /** Unix seconds now; default the system clock. */
  nowSeconds?: () => bigint;
}

/** Checks, runs and charges off-chain requests for one inference node. */
export class OffchainService {
  private readonly reservations = new FeeReservations();
  private readonly nowSeconds: () => bigint;

  constructor(private readonly opts: OffchainServiceOptions) {
    this.nowSeconds = opts.nowSeconds ?? (() => BigInt(Math.floor(Date.now() / 1000)));
  }

  info(): OffchainInfo {
    return {
      chainId: this.opts.domain.chainId,
      verifyingContract: this.opts.domain.verifyingContract,
      node: this.opts.node,
      maxLeaves: this.opts.batchPolicy.maxLeaves,
      maxWaitMs: this.opts.batchPolicy.maxWaitMs,
    };
  }

  /** Serve one request; throws OffchainRequestError (with its HTTP status) when it is refused. */
  async serve(body: OffchainRequestBody): Promise<OffchainAnswer> {
    const started = performance.now();
    let outcome: OffchainOutcome = "error";
    try {
      const answer = await this.serveUnmetered(body);
      outcome = "served";
      return answer;
    } catch (err) {
      if (err instanceof OffchainRequestError) outcome = err.outcome;
      throw err;
    } finally {
      this.opts.metrics?.requests.inc({ outcome });
      this.opts.metrics?.duration.observe({ outcome }, (performance.now() - started) / 1000);
    }
  }

  private async serveUnmetered(body: OffchainRequestBody): Promise<OffchainAnswer> {
    const { opts } = this;
    const req = parseOffchainRequest(body, opts.node);
    const { payer, message } = req;

    let valid = false;
    try {
      valid = await verifyTypedData({
        address: payer,
        ...offchainTypedData(opts.domain, message),
        signature: req.signature,
      });
    } catch {
      valid = false;
    }
    if (!valid)
      throw new OffchainRequestError(
        401,
        "BAD_SIGNATURE",
        "bad_signature",
        `the signature is not ${payer}'s over this OffchainInference (node ${opts.node}, chain ${opts.domain.chainId}, verifyingContract ${opts.domain.verifyingContract})`,
      );
    const now = this.nowSeconds();
    if (message.expiry <= now)
      throw new OffchainRequestError(
        400,
        "EXPIRED",
        "expired",
        `the request expired at ${message.expiry} (now ${now})`,
      );
    let claimed: boolean;
    try {
      claimed = await opts.nonces.claim(payer, message.nonce);
    } catch (err) {
      throw new OffchainRequestError(
        503,
        "NONCE_STORE_UNAVAILABLE",
        "unavailable",
        `could not record the nonce: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (!claimed)
      throw new OffchainRequestError(
        409,
        "NONCE_USED",
        "nonce_used",
        `nonce ${message.nonce} of ${payer} was already used with this node`,
      );

    let reserved: bigint | undefined;
    try {
      const model = await this.model(message.modelId);
      if (message.maxFee < model.fee)
        throw new OffchainRequestError(
          402,
          "FEE_TOO_LOW",
          "fee_too_low",
          `maxFee ${message.maxFee} is below model ${message.modelId}'s fee ${model.fee}`,
        );
      const fee = model.fee;
      const [deposit, allowance] = await readChain(() =>
        Promise.all([opts.chain.depositOf(payer), opts.chain.allowance(payer, opts.node)]),
      );
      // Check and reserve in one synchronous step: no other request can slip in between.
      const pending = opts.poster.pendingFees(payer);
      if (!this.reservations.tryReserve(payer, fee, fundsAvailable({ deposit, allowance, pending }))) {
        const held = pending + this.reservations.of(payer);
        throw new OffchainRequestError(
          402,
          "INSUFFICIENT_FUNDS",
          "insufficient_funds",
          `${payer} cannot pay ${fee} wei more to node ${opts.node}: deposit ${deposit}, allowance ${allowance}, ${held} already accepted and not yet posted`,
        );
      }
      reserved = fee;

      const answer = await computeAnswer(await this.load(message.modelId), req.input);
      if (answer.status === "InvalidInput")
        throw new OffchainRequestError(400, "INVALID_INPUT", "invalid_input", answer.reason);
      if (answer.status !== "Success")
        throw new OffchainRequestError(422, "MODEL_FAILED", "model_failed", answer.reason);

      opts.poster.add(payer, message.modelId, {
        requestId: req.requestId,
        inputHash: message.inputHash,
        outputHash: answer.outputHash,
        fee,
      });
      this.reservations.release(payer, fee);
      reserved = undefined;
      opts.logger.info(
        { requestId: req.requestId.toString(), payer, modelId: message.modelId, fee: fee.toString() },
        "off-chain request served",
      );
      return {
        requestId: req.requestId.toString(),
        payer,
        node: opts.node,
        modelId: message.modelId,
        inputHash: message.inputHash,
        outputHash: answer.outputHash,
        output: answer.output,
        outputs: decodeTensors(answer.output),
        fee: fee.toString(),
        batch: "pending",
      };
    } catch (err) {
      if (reserved !== undefined) this.reservations.release(payer, reserved);
      // Nothing was charged: the same signed request may be sent again.
      await opts.nonces
        .release(payer, message.nonce)
        .catch((e: unknown) =>
          opts.logger.warn(
            { payer, nonce: message.nonce.toString(), err: String(e) },
            "could not release a nonce",
          ),
        );
      throw err;
    }
  }

  private async model(modelId: Hex): Promise<ModelInfo> {
    const model = await readChain(() => this.opts.chain.getModel(modelId));
    if (model === undefined)
      throw new OffchainRequestError(
        404,
        "UNKNOWN_MODEL",
        "unknown_model",
        `model ${modelId} is not registered`,
      );
    if (model.deprecated)
      throw new OffchainRequestError(
        410,
        "MODEL_DEPRECATED",
        "model_deprecated",
        `model ${modelId} is deprecated`,
      );
    return model;
  }

  private async load(modelId: Hex): Promise<LoadedModel> {
    try {
      return await this.opts.models.get(modelId);
    } catch (err) {
      if (
        err instanceof ModelHashMismatchError ||
        err instanceof ModelSchemaError ||
        (err instanceof FetchError && err.permanent)
      )
        throw new OffchainRequestError(
          422,
          "MODEL_UNAVAILABLE",
          "model_failed",
          `the model cannot be run: ${err.message}`,
        );
      throw new OffchainRequestError(
        503,
        "MODEL_UNAVAILABLE",
        "unavailable",
        `the model could not be loaded now: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}

async function readChain<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OffchainRequestError) throw err;
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new OffchainRequestError(
      502,
      "CHAIN_UNAVAILABLE",
      "unavailable",
      `could not read the chain: ${msg}`,
      {
        cause: err,
      },
    );
  }
}
