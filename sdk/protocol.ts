/** Protocol enums and structs, mirroring contracts/interfaces. Same names, same numbers. */
import type { Address, Hex } from "viem";

export const RequestState = [
  "None",
  "Pending",
  "Fulfilled",
  "Failed",
  "Refunded",
  "Finalized",
  "Challenged",
  "Overturned",
] as const;
export type RequestStateName = (typeof RequestState)[number];

export const ResultStatus = {
  Success: 0,
  SuccessOffchain: 1,
  InvalidInput: 2,
  InputUnavailable: 3,
  ModelFailed: 4,
} as const;
export type ResultStatusName = keyof typeof ResultStatus;
export const RESULT_STATUS_NAMES = Object.keys(ResultStatus) as ResultStatusName[];

export const CallbackResult = ["NotRequested", "Success", "Reverted", "NoCode"] as const;
export type CallbackResultName = (typeof CallbackResult)[number];

export const Roles = { INFERENCE: 1, VERIFIER: 2, DATA: 4 } as const;

export const DisputeVerdict = ["Pending", "AccusedRight", "AccusedWrong", "NoMajority"] as const;
export type DisputeVerdictName = (typeof DisputeVerdict)[number];

/** The struct the hub commits to and emits; passed back to fulfil, refund or finalise. */
export interface Request {
  requestId: bigint;
  modelId: Hex;
  requester: Address;
  callbackGasLimit: number;
  deadline: bigint;
  fee: bigint;
  inputHash: Hex;
  inputIsRef: boolean;
  /** How many distinct nodes answer: 1, or 2..7 for a result decided by their agreement. */
  redundancy: number;
}

export interface Fulfillment {
  node: Address;
  outputHash: Hex;
  fulfilledAt: bigint;
}

export function isErrorStatus(status: number): boolean {
  return status >= ResultStatus.InvalidInput;
}
