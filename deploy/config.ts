import { parseEther } from "ethers";

export { FIXED_ADDRESSES, type ContractName } from "../sdk/addresses";

export interface HubParams {
  maxInputBytes: number;
  maxCallbackGasLimit: number;
  requestTimeout: number;
}

export interface SettlementParams {
  treasury: string;
  challengeWindow: number;
  protocolFeeBps: number;
}

export interface DisputeParams {
  challengeBond: bigint;
  slashAmount: bigint;
  absentPenalty: bigint;
  challengerRewardBps: number;
  voterRewardBps: number;
  committeeSize: number;
  votingPeriod: number;
}

export interface StakeParams {
  minStakeInference: bigint;
  minStakeVerifier: bigint;
  minStakeData: bigint;
  unbondingDelay: number;
  jailPeriod: number;
}

export interface SystemParams {
  hub: HubParams;
  settlement: Omit<SettlementParams, "treasury"> & { treasury?: string };
  stake: StakeParams;
  disputes: DisputeParams;
}

/** Devnet defaults: short windows so that a person sees settlement happen. */
export const DEVNET_PARAMS: SystemParams = {
  hub: { maxInputBytes: 16 * 1024, maxCallbackGasLimit: 2_000_000, requestTimeout: 60 * 60 },
  settlement: { challengeWindow: 60, protocolFeeBps: 500 },
  stake: {
    minStakeInference: parseEther("1"),
    minStakeVerifier: parseEther("1"),
    minStakeData: parseEther("0.5"),
    unbondingDelay: 60 * 60,
    jailPeriod: 24 * 60 * 60,
  },
  // A wrong result costs half the minimum inference stake; half of that goes to the challenger.
  disputes: {
    challengeBond: parseEther("0.1"),
    slashAmount: parseEther("0.5"),
    absentPenalty: parseEther("0.01"),
    challengerRewardBps: 5_000,
    voterRewardBps: 5_000,
    committeeSize: 3,
    votingPeriod: 60,
  },
};
