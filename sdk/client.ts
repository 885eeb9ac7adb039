/**
 * The dApp client: ask a model from TypeScript and wait for its answer, on viem.
 *
 *   const client = new GradnetClient({ publicClient, walletClient });
 *   const { requestId } = await client.requestInference({ modelId, inputs, inputDecimals: 6 });
 *   const result = await client.waitForResult(requestId);
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  decodeEventLog,
  hexToString,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { inferenceHubAbi, modelRegistryAbi } from "./abis";
import { resolveAddresses, type Addresses } from "./addresses";
import {
  ContractRevertError,
  FeeTooLowError,
  GradnetError,
  ModelNotFoundError,
  RequestExpiredError,
  RequestFailedError,
  ResultTimeoutError,
} from "./errors";
import {
  CallbackResult,
  RESULT_STATUS_NAMES,
  RequestState,
  isErrorStatus,
  type CallbackResultName,
  type Request,
  type RequestStateName,
  type ResultStatusName,
} from "./protocol";
import { decodeTensors, encodeTensors, type NamedTensor } from "./tensor";
import { offchainInfo, postOffchainRequest, signOffchainRequest, type OffchainResult } from "./offchain";

export interface ModelInfo {
  modelId: Hex;
  owner: Address;
  fee: bigint;
  ownerShareBps: number;
  decimals: number;
  deprecated: boolean;
  registeredAt: bigint;
  uri: string;
  schema: {
    inputs: readonly { name: string; dtype: number; shape: readonly bigint[] }[];
    outputs: readonly { name: string; dtype: number; shape: readonly bigint[] }[];
  };
}

export interface RequestOptions {
  modelId: Hex;
  /** Named tensors (encoded with `inputDecimals`), or bytes already in canonical form. */
  inputs: readonly NamedTensor[] | Hex;
  /** Fixed-point decimals for float inputs; default 6. */
  inputDecimals?: number;
  /** Wei to pay; default the model's fee, times `redundancy`. */
  fee?: bigint;
  /**
   * How many distinct nodes answer (default 1). With 2..7 the result is the answer more than
   * half of them agree on; nodes that disagree are slashed.
   */
  redundancy?: number;
}

export interface RequestReceipt {
  requestId: bigint;
  request: Request;
  txHash: Hex;
  blockNumber: bigint;
}

export interface InferenceResult {
  requestId: bigint;
  status: ResultStatusName;
  node: Address;
  outputHash: Hex;
  /** Canonical output bytes (`Success`), or the URI of the stored output (`SuccessOffchain`). */
  output: Hex;
  /** Decoded outputs, floats as doubles; empty for `SuccessOffchain`. */
  outputs: NamedTensor[];
  callbackResult: CallbackResultName;
  fulfilledAt: bigint;
  txHash: Hex;
  blockNumber: bigint;
}

export interface OffchainOptions {
  /** The relayer of the inference node (its `POST /inference`). */
  relayerUrl: string;
  modelId: Hex;
  /** Named tensors (encoded with `inputDecimals`), or bytes already in canonical form. */
  inputs: readonly NamedTensor[] | Hex;
  /** Fixed-point decimals for float inputs; default 6. */
  inputDecimals?: number;
  /** The most to pay, wei; default the model's fee. */
  maxFee?: bigint;
  /** Default a random uint256. */
  nonce?: bigint;
  /** Unix seconds; default 10 minutes from now. */
  expiry?: bigint;
}

export interface WaitOptions {
  /** Give up after this long (ResultTimeoutError); default 120 s. */
  timeoutMs?: number;
  pollIntervalMs?: number;
  /** Where to start looking for the answer; default the block the request was mined in. */
  fromBlock?: bigint;
}

type AnyPublicClient = PublicClient<Transport, Chain | undefined>;
type AnyWalletClient = WalletClient<Transport, Chain | undefined, Account | undefined>;

export class GradnetClient {
  readonly publicClient: AnyPublicClient;
  readonly walletClient: AnyWalletClient | undefined;
  private addressesPromise: Promise<Addresses> | undefined;
  private readonly requestBlocks = new Map<bigint, bigint>();

  constructor(opts: {
    publicClient: AnyPublicClient;
    walletClient?: AnyWalletClient;
    addresses?: Addresses;
  }) {
    this.publicClient = opts.publicClient;
    this.walletClient = opts.walletClient;
    if (opts.addresses !== undefined) this.addressesPromise = Promise.resolve(opts.addresses);
  }

  /** The system's addresses: as given, else from deployments/<chainId>.json or the devnet's. */
  addresses(): Promise<Addresses> {
    this.addressesPromise ??= this.publicClient.getChainId().then((id) => resolveAddresses(id));
    return this.addressesPromise;
  }

  async getModel(modelId: Hex): Promise<ModelInfo> {
    const { modelRegistry } = await this.addresses();
    try {
      return (await this.publicClient.readContract({
        address: modelRegistry,
        abi: modelRegistryAbi,
        functionName: "getModel",
        args: [modelId],
      })) as ModelInfo;
    } catch (err) {
      throw toGradnetError(err);
    }
  }

  async requestState(requestId: bigint): Promise<RequestStateName> {
    const { inferenceHub } = await this.addresses();
    const state = await this.publicClient.readContract({
      address: inferenceHub,
      abi: inferenceHubAbi,
      functionName: "requestState",
      args: [requestId],
    });
    return RequestState[state] ?? "None";
  }

  /** Send a request from the wallet's account (an EOA: no callback; read the answer here). */
  async requestInference(opts: RequestOptions): Promise<RequestReceipt> {
    const wallet = this.walletClient;
    if (wallet?.account === undefined)
      throw new GradnetError("NO_WALLET", "requestInference needs a walletClient with an account");
    const { inferenceHub } = await this.addresses();
    const input =
      typeof opts.inputs === "string" ? opts.inputs : encodeTensors(opts.inputs, opts.inputDecimals ?? 6);
    const redundancy = opts.redundancy ?? 1;
    if (!Number.isInteger(redundancy) || redundancy < 1 || redundancy > 7)
      throw new GradnetError(
        "INVALID_REDUNDANCY",
        `redundancy must be an integer from 1 to 7, got ${redundancy}`,
      );
    const fee = opts.fee ?? (await this.getModel(opts.modelId)).fee * BigInt(redundancy);
    let hash: Hex;
    try {
      const call = {
        address: inferenceHub,
        abi: inferenceHubAbi,
        value: fee,
        account: wallet.account,
        chain: wallet.chain,
      };
      if (redundancy === 1) {
        const { request } = await this.publicClient.simulateContract({
          ...call,
          functionName: "requestInference",
          args: [opts.modelId, input, 0],
        });
        hash = await wallet.writeContract(request);
      } else {
        const { request } = await this.publicClient.simulateContract({
          ...call,
          functionName: "requestInferenceRedundant",
          args: [opts.modelId, input, 0, redundancy],
        });
        hash = await wallet.writeContract(request);
      }
    } catch (err) {
      throw toGradnetError(err);
    }
    const receipt = await this.publicClient.waitForTransactionReceipt({ hash });
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== inferenceHub.toLowerCase()) continue;
      try {
        const ev = decodeEventLog({ abi: inferenceHubAbi, ...log });
        if (ev.eventName === "InferenceRequested") {
          const request = ev.args.request as Request;
          this.requestBlocks.set(request.requestId, receipt.blockNumber);
          return { requestId: request.requestId, request, txHash: hash, blockNumber: receipt.blockNumber };
        }
      } catch {
        // another event of the hub
      }
    }
    throw new GradnetError("NO_REQUEST_EVENT", `transaction ${hash} emitted no InferenceRequested`);
  }

  /**
   * Run a model off chain, paid from the wallet account's BatchSettlement deposit: sign an
   * `OffchainInference` for the relayer's node, send it, and return the decoded answer (its
   * output hash checked). The payer must have deposited and approved the node (`approveNode`).
   * Throws RelayerRequestError when the relayer refuses (its `status` and `code` say why).
   */
  async inferOffchain(opts: OffchainOptions): Promise<OffchainResult> {
    const wallet = this.walletClient;
    if (wallet?.account === undefined)
      throw new GradnetError("NO_WALLET", "inferOffchain needs a walletClient with an account");
    const [{ batchSettlement }, chainId, info] = await Promise.all([
      this.addresses(),
      this.publicClient.getChainId(),
      offchainInfo(opts.relayerUrl),
    ]);
    if (info.chainId !== chainId || info.verifyingContract.toLowerCase() !== batchSettlement.toLowerCase())
      throw new GradnetError(
        "RELAYER_MISMATCH",
        `the relayer signs for chain ${info.chainId} and BatchSettlement ${info.verifyingContract}, ` +
          `this client for chain ${chainId} and ${batchSettlement}`,
      );
    const input =
      typeof opts.inputs === "string" ? opts.inputs : encodeTensors(opts.inputs, opts.inputDecimals ?? 6);
    const maxFee = opts.maxFee ?? (await this.getModel(opts.modelId)).fee;
    const body = await signOffchainRequest(wallet, {
      domain: { chainId, verifyingContract: batchSettlement },
      node: info.node,
      modelId: opts.modelId,
      input,
      maxFee,
      ...(opts.nonce === undefined ? {} : { nonce: opts.nonce }),
      ...(opts.expiry === undefined ? {} : { expiry: opts.expiry }),
    });
    return postOffchainRequest(opts.relayerUrl, body);
  }

  /**
   * Wait for the answer to `requestId`. Resolves with the decoded outputs; throws
   * RequestFailedError (error status, fee refunded), RequestExpiredError (deadline passed
   * unanswered) or ResultTimeoutError (gave up locally).
   */
  async waitForResult(requestId: bigint, opts: WaitOptions = {}): Promise<InferenceResult> {
    const { inferenceHub } = await this.addresses();
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const pollMs = opts.pollIntervalMs ?? 500;
    const started = Date.now();
    const fromBlock =
      opts.fromBlock ?? this.requestBlocks.get(requestId) ?? (await this.findRequestBlock(requestId));
    let deadline: bigint | undefined;
    for (;;) {
      const fulfilled = await this.publicClient.getContractEvents({
        address: inferenceHub,
        abi: inferenceHubAbi,
        eventName: "InferenceFulfilled",
        args: { requestId },
        fromBlock,
        toBlock: "latest",
      });
      const log = fulfilled[0];
      if (log !== undefined)
        return this.toResult(requestId, log.args as FulfilledArgs, log.transactionHash!, log.blockNumber!);

      const state = await this.requestState(requestId);
      if (state === "Refunded") {
        throw new RequestExpiredError(
          requestId,
          (deadline ??= await this.deadlineOf(requestId, fromBlock)),
          true,
        );
      }
      if (state === "Pending") {
        // The deadline never changes: read the request's event once, not on every poll.
        deadline ??= await this.deadlineOf(requestId, fromBlock);
        const block = await this.publicClient.getBlock();
        if (block.timestamp > deadline) throw new RequestExpiredError(requestId, deadline, false);
      }
      if (Date.now() - started > timeoutMs) throw new ResultTimeoutError(requestId, timeoutMs);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  private toResult(
    requestId: bigint,
    args: FulfilledArgs,
    txHash: Hex,
    blockNumber: bigint,
  ): InferenceResult {
    const status = RESULT_STATUS_NAMES[args.status] ?? "ModelFailed";
    if (isErrorStatus(args.status)) {
      let reason: string;
      try {
        reason = hexToString(args.output);
      } catch {
        reason = args.output;
      }
      throw new RequestFailedError(requestId, status, reason);
    }
    return {
      requestId,
      status,
      node: args.node,
      outputHash: args.outputHash,
      output: args.output,
      outputs: status === "Success" ? decodeTensors(args.output) : [],
      callbackResult: CallbackResult[args.callbackResult] ?? "NotRequested",
      fulfilledAt: args.fulfilledAt,
      txHash,
      blockNumber,
    };
  }

  private async requestLog(requestId: bigint, fromBlock: bigint) {
    const { inferenceHub } = await this.addresses();
    const logs = await this.publicClient.getContractEvents({
      address: inferenceHub,
      abi: inferenceHubAbi,
      eventName: "InferenceRequested",
      args: { requestId },
      fromBlock,
      toBlock: "latest",
    });
    const log = logs[0];
    if (log === undefined) throw new GradnetError("UNKNOWN_REQUEST", `no request ${requestId} on this chain`);
    return log;
  }

  private async findRequestBlock(requestId: bigint): Promise<bigint> {
    const log = await this.requestLog(requestId, 0n);
    this.requestBlocks.set(requestId, log.blockNumber!);
    return log.blockNumber!;
  }

  private async deadlineOf(requestId: bigint, fromBlock: bigint): Promise<bigint> {
    const log = await this.requestLog(requestId, fromBlock);
    return (log.args.request as Request).deadline;
  }
}

interface FulfilledArgs {
  requestId: bigint;
  node: Address;
  status: number;
  outputHash: Hex;
  fulfilledAt: bigint;
  callbackResult: number;
  output: Hex;
}

/** The custom error a viem contract call reverted with, if it was one the ABI knows. */
export function decodeRevert(err: unknown): { name: string; args: readonly unknown[] } | undefined {
  if (!(err instanceof BaseError)) return undefined;
  const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
  if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName !== undefined) {
    return { name: revert.data.errorName, args: (revert.data.args ?? []) as readonly unknown[] };
  }
  return undefined;
}

/** Map a viem error from a hub or registry call to gradnet's typed errors. */
export function toGradnetError(err: unknown): Error {
  if (err instanceof GradnetError) return err;
  {
    const revert = decodeRevert(err);
    if (revert !== undefined) {
      const { name, args } = revert;
      switch (name) {
        case "Hub__ModelNotActive":
        case "ModelRegistry__NotRegistered":
          return new ModelNotFoundError(args[0] as Hex);
        case "Hub__FeeTooLow":
          return new FeeTooLowError(args[0] as Hex, args[1] as bigint, args[2] as bigint);
        default:
          return new ContractRevertError(name, args, { cause: err });
      }
    }
  }
  return err instanceof Error ? err : new Error(String(err));
}
