/**
 * The relayer's one window on the chain: a narrow interface over the InferenceHub, and its viem
 * adapter. The watcher and the API depend on the interface, so tests can hand them a fake chain.
 */
import type { Address, Hex, PublicClient } from "viem";
import { inferenceHubAbi, type Request, type RequestedLog } from "../sdk";

export interface FulfilledLog {
  requestId: bigint;
  node: Address;
  status: number;
  outputHash: Hex;
  fulfilledAt: bigint;
  callbackResult: number;
  output: Hex;
  txHash: Hex;
  blockNumber: bigint;
}

export interface RefundedLog {
  requestId: bigint;
  requester: Address;
  fee: bigint;
  /** A RequestState number: Failed (error answer) or Refunded (deadline passed). */
  reason: number;
  txHash: Hex;
  blockNumber: bigint;
}

export interface ReleasedLog {
  requestId: bigint;
  fee: bigint;
  txHash: Hex;
  blockNumber: bigint;
}

export interface HubReader {
  readonly hub: Address;
  getBlockNumber(): Promise<bigint>;
  /** Every InferenceRequested log of the hub in [fromBlock, toBlock], in chain order. */
  getRequestedLogs(fromBlock: bigint, toBlock: bigint): Promise<RequestedLog[]>;
  /** The hub's RequestState number for `requestId` (0 = None). */
  getRequestState(requestId: bigint): Promise<number>;
  /** The first InferenceRequested / InferenceFulfilled / RequestRefunded / RequestReleased log of a request. */
  findRequested(requestId: bigint): Promise<RequestedLog | undefined>;
  findFulfilled(requestId: bigint, fromBlock: bigint): Promise<FulfilledLog | undefined>;
  findRefunded(requestId: bigint, fromBlock: bigint): Promise<RefundedLog | undefined>;
  findReleased(requestId: bigint, fromBlock: bigint): Promise<ReleasedLog | undefined>;
}

type AnyPublicClient = Pick<PublicClient, "getBlockNumber" | "getContractEvents" | "readContract">;

function located(log: { transactionHash: Hex | null; blockNumber: bigint | null; logIndex: number | null }): {
  txHash: Hex;
  blockNumber: bigint;
  logIndex: number;
} {
  if (log.transactionHash === null || log.blockNumber === null || log.logIndex === null)
    throw new Error("the RPC returned a pending log for a mined block range");
  return { txHash: log.transactionHash, blockNumber: log.blockNumber, logIndex: log.logIndex };
}

/**
 * The HubReader over a viem public client. `searchFromBlock` is where per-request event searches
 * start (the hub's deployment block): nothing of the hub's can be older.
 */
export function viemHubReader(client: AnyPublicClient, hub: Address, searchFromBlock = 0n): HubReader {
  const requested = async (fromBlock: bigint, toBlock: bigint | "latest", requestId?: bigint) => {
    const logs = await client.getContractEvents({
      address: hub,
      abi: inferenceHubAbi,
      eventName: "InferenceRequested",
      args: requestId === undefined ? undefined : { requestId },
      fromBlock,
      toBlock,
      strict: true,
    });
    return logs.map((log): RequestedLog => {
      const { txHash, blockNumber, logIndex } = located(log);
      return { request: log.args.request as Request, input: log.args.input, blockNumber, txHash, logIndex };
    });
  };

  return {
    hub,
    getBlockNumber: () => client.getBlockNumber({ cacheTime: 0 }),
    getRequestedLogs: (fromBlock, toBlock) => requested(fromBlock, toBlock),
    async getRequestState(requestId) {
      return client.readContract({
        address: hub,
        abi: inferenceHubAbi,
        functionName: "requestState",
        args: [requestId],
      });
    },
    async findRequested(requestId) {
      return (await requested(searchFromBlock, "latest", requestId))[0];
    },
    async findFulfilled(requestId, fromBlock) {
      const logs = await client.getContractEvents({
        address: hub,
        abi: inferenceHubAbi,
        eventName: "InferenceFulfilled",
        args: { requestId },
        fromBlock,
        toBlock: "latest",
        strict: true,
      });
      const log = logs[0];
      if (log === undefined) return undefined;
      const { txHash, blockNumber } = located(log);
      return { ...log.args, txHash, blockNumber };
    },
    async findRefunded(requestId, fromBlock) {
      const logs = await client.getContractEvents({
        address: hub,
        abi: inferenceHubAbi,
        eventName: "RequestRefunded",
        args: { requestId },
        fromBlock,
        toBlock: "latest",
        strict: true,
      });
      const log = logs[0];
      if (log === undefined) return undefined;
      const { txHash, blockNumber } = located(log);
      return { ...log.args, txHash, blockNumber };
    },
    async findReleased(requestId, fromBlock) {
      const logs = await client.getContractEvents({
        address: hub,
        abi: inferenceHubAbi,
        eventName: "RequestReleased",
        args: { requestId },
        fromBlock,
        toBlock: "latest",
        strict: true,
      });
      const log = logs[0];
      if (log === undefined) return undefined;
      const { txHash, blockNumber } = located(log);
      return { ...log.args, txHash, blockNumber };
    },
  };
}
