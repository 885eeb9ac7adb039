import { AbiCoder, keccak256, sha256, parseEther, toUtf8Bytes, type Signer } from "ethers";
import hre from "hardhat";
import { deploySystem, type DeployedSystem } from "../../deploy/system";
import { DEVNET_PARAMS, type SystemParams } from "../../deploy/config";

export const ROLE = { INFERENCE: 1, VERIFIER: 2, DATA: 4 } as const;
export const DTYPE = { FLOAT: 1, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, DOUBLE: 11 } as const;
export const STATE = {
  None: 0,
  Pending: 1,
  Fulfilled: 2,
  Failed: 3,
  Refunded: 4,
  Finalized: 5,
  Challenged: 6,
  Overturned: 7,
} as const;
export const STATUS = {
  Success: 0,
  SuccessOffchain: 1,
  InvalidInput: 2,
  InputUnavailable: 3,
  ModelFailed: 4,
} as const;
export const CALLBACK = { NotRequested: 0, Success: 1, Reverted: 2, NoCode: 3 } as const;

export interface TensorValue {
  name: string;
  dtype: number;
  decimals: number;
  shape: number[];
  values: bigint[];
  strings: string[];
}

const TENSORS =
  "tuple(string name,uint8 dtype,uint8 decimals,uint32[] shape,int256[] values,string[] strings)[]";

/** abi.encode(Tensor[]), as contracts decode it. (The SDK owns the full canonical codec.) */
export function encodeTensors(tensors: TensorValue[]): string {
  return AbiCoder.defaultAbiCoder().encode(
    [TENSORS],
    [tensors.map((t) => [t.name, t.dtype, t.decimals, t.shape, t.values, t.strings])],
  );
}

export function floatTensor(
  name: string,
  values: bigint[],
  decimals = 6,
  shape = [1, values.length],
): TensorValue {
  return { name, dtype: DTYPE.FLOAT, decimals, shape, values, strings: [] };
}

export const SAMPLE_INPUT = encodeTensors([floatTensor("input", [5_100000n, 3_500000n, 1_400000n, 200000n])]);
export const SAMPLE_OUTPUT = encodeTensors([floatTensor("probabilities", [970000n, 25000n, 5000n])]);

/** The Request struct as the hub emits it and expects it back. */
export interface RequestStruct {
  requestId: bigint;
  modelId: string;
  requester: string;
  callbackGasLimit: bigint;
  deadline: bigint;
  fee: bigint;
  inputHash: string;
  inputIsRef: boolean;
  redundancy: bigint;
}

export interface FulfillmentStruct {
  node: string;
  outputHash: string;
  fulfilledAt: bigint;
}

export const MODEL_BYTES = toUtf8Bytes("pretend these are the bytes of an ONNX file");
export const MODEL_ID = sha256(MODEL_BYTES);
export const MODEL_FEE = parseEther("0.01");
export const OWNER_SHARE_BPS = 1_000;
export const SCHEMA = {
  inputs: [{ name: "input", dtype: DTYPE.FLOAT, shape: [-1, 4] }],
  outputs: [{ name: "probabilities", dtype: DTYPE.FLOAT, shape: [-1, 3] }],
};

export const TEST_PARAMS: SystemParams = DEVNET_PARAMS;

export interface Fixture extends DeployedSystem {
  owner: Signer;
  treasury: Signer;
  modelOwner: Signer;
  node1: Signer;
  node2: Signer;
  user: Signer;
  other: Signer;
  signers: Signer[];
}

/** The system at its fixed addresses, one model registered, two staked inference nodes. */
export async function deployFixture(): Promise<Fixture> {
  const signers = await hre.ethers.getSigners();
  const [owner, treasury, modelOwner, node1, node2, user, other] = signers as unknown as [
    Signer,
    Signer,
    Signer,
    Signer,
    Signer,
    Signer,
    Signer,
  ];
  const params: SystemParams = {
    ...TEST_PARAMS,
    settlement: { ...TEST_PARAMS.settlement, treasury: await treasury.getAddress() },
  };
  const system = await deploySystem(hre, { mode: "fixed", params, deployer: owner });
  await system.models
    .connect(modelOwner)
    .registerModel(MODEL_ID, "gradnet://models/" + MODEL_ID, SCHEMA, 6, MODEL_FEE, OWNER_SHARE_BPS);
  for (const n of [node1, node2]) {
    await system.nodes.connect(n).register(ROLE.INFERENCE, { value: params.stake.minStakeInference });
  }
  return { ...system, owner, treasury, modelOwner, node1, node2, user, other, signers };
}

/** Pull the emitted Request struct out of a request transaction's receipt. */
export async function requestFromTx(
  system: DeployedSystem,
  tx: { wait(): Promise<unknown> },
): Promise<RequestStruct> {
  const receipt = (await tx.wait()) as { logs: { topics: readonly string[]; data: string }[] };
  for (const log of receipt.logs) {
    const parsed = system.hub.interface.parseLog(log);
    if (parsed?.name === "InferenceRequested") {
      const r = parsed.args.request;
      return {
        requestId: r.requestId,
        modelId: r.modelId,
        requester: r.requester,
        callbackGasLimit: r.callbackGasLimit,
        deadline: r.deadline,
        fee: r.fee,
        inputHash: r.inputHash,
        inputIsRef: r.inputIsRef,
        redundancy: r.redundancy,
      };
    }
  }
  throw new Error("no InferenceRequested event in receipt");
}

/** Pull the recorded Fulfillment out of a fulfil transaction's receipt. */
export async function fulfillmentFromTx(
  system: DeployedSystem,
  tx: { wait(): Promise<unknown> },
  requestId: bigint,
): Promise<FulfillmentStruct> {
  const receipt = (await tx.wait()) as { logs: { topics: readonly string[]; data: string }[] };
  for (const log of receipt.logs) {
    const parsed = system.hub.interface.parseLog(log);
    if (parsed?.name === "InferenceFulfilled" && parsed.args.requestId === requestId) {
      return {
        node: parsed.args.node,
        outputHash: parsed.args.outputHash,
        fulfilledAt: parsed.args.fulfilledAt,
      };
    }
  }
  throw new Error(`no InferenceFulfilled event for request ${requestId}`);
}

export const hashOf = keccak256;
