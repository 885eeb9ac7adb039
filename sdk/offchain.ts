/**
 * Off-chain inference paid from a BatchSettlement deposit (docs/protocol.md, "Batch settlement",
 * and docs/relayer.md, "Off-chain inference").
 *
 * A payer deposits into BatchSettlement and approves an inference node up to an allowance. Each
 * request is then one EIP-712 signature over `OffchainInference`: the node, the model, the
 * input's sha256, the most the payer will pay, a nonce and an expiry. The node answers over
 * HTTP at once and later commits the result in a Merkle batch it posts on chain, paid from the
 * deposit. The request id of the result is `uint256(keccak256(abi.encode(payer, nonce)))`.
 *
 * Pure core (typed data, request ids, the request body) and thin adapters: `signOffchainRequest`
 * (asks a viem wallet for the signature) and the relayer's HTTP routes (`offchainInfo`,
 * `postOffchainRequest`, `batchProof`). `GradnetClient.inferOffchain` puts them together.
 */
import {
  encodeAbiParameters,
  hexToBigInt,
  isAddress,
  isHex,
  keccak256,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type Transport,
  type TypedDataDomain,
  type WalletClient,
} from "viem";
import { GradnetError, RelayerRequestError } from "./errors";
import { decodeTensors, inputHash, outputHash, type NamedTensor } from "./tensor";

/** The EIP-712 domain's name and version of every gradnet off-chain request. */
export const OFFCHAIN_DOMAIN = { name: "gradnet", version: "1" } as const;

/** The EIP-712 types of an off-chain inference request. */
export const OFFCHAIN_INFERENCE_TYPES = {
  OffchainInference: [
    { name: "node", type: "address" },
    { name: "modelId", type: "bytes32" },
    { name: "inputHash", type: "bytes32" },
    { name: "maxFee", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "expiry", type: "uint64" },
  ],
} as const;

/** What the payer signs: one request to one node. */
export interface OffchainInference {
  /** The inference node that runs the model and charges the deposit. */
  node: Address;
  modelId: Hex;
  /** sha256 of the input bytes (abi.encode(Tensor[])). */
  inputHash: Hex;
  /** The most the payer agrees to be charged for this request, wei. */
  maxFee: bigint;
  /** Any uint256 the payer has not used with this node before; it also makes the request id. */
  nonce: bigint;
  /** Unix seconds after which the node must refuse the request. */
  expiry: bigint;
}

/** Where signatures are valid: the chain and its BatchSettlement contract. */
export interface OffchainDomain {
  chainId: number;
  /** BatchSettlement's address. */
  verifyingContract: Address;
}

export function offchainDomain(d: OffchainDomain): TypedDataDomain {
  return { ...OFFCHAIN_DOMAIN, chainId: d.chainId, verifyingContract: d.verifyingContract };
}

/** The typed data to sign (viem's `signTypedData`) or check (`verifyTypedData`). Pure. */
export function offchainTypedData(domain: OffchainDomain, message: OffchainInference) {
  return {
    domain: offchainDomain(domain),
    types: OFFCHAIN_INFERENCE_TYPES,
    primaryType: "OffchainInference" as const,
    message,
  };
}

/** The request id of a payer's off-chain request: uint256(keccak256(abi.encode(payer, nonce))). */
export function offchainRequestId(payer: Address, nonce: bigint): bigint {
  return hexToBigInt(
    keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [payer, nonce])),
  );
}

/** The JSON body of `POST /inference`: numbers as decimal strings. */
export interface OffchainRequestBody {
  payer: Address;
  modelId: Hex;
  /** The canonical input bytes, abi.encode(Tensor[]). */
  input: Hex;
  /** wei, decimal */
  maxFee: string;
  /** decimal */
  nonce: string;
  /** unix seconds */
  expiry: number;
  /** The payer's EIP-712 signature of `OffchainInference`. */
  signature: Hex;
}

/** What the relayer says about its off-chain inference (`GET /inference`). */
export interface OffchainInfo {
  chainId: number;
  /** BatchSettlement, the typed data's verifyingContract. */
  verifyingContract: Address;
  /** The inference node to name in the typed data and to approve in BatchSettlement. */
  node: Address;
  /** Results per batch, at most. */
  maxLeaves: number;
  /** How long a result waits, at most, before its batch is posted. */
  maxWaitMs: number;
}

const UINT256_MAX = (1n << 256n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** A request that cannot be signed as given. */
export class InvalidOffchainRequestError extends GradnetError {
  constructor(reason: string) {
    super("INVALID_OFFCHAIN_REQUEST", reason);
  }
}

/** The message a payer signs for `input`, checked. Pure. */
export function offchainMessage(opts: {
  node: Address;
  modelId: Hex;
  input: Hex;
  maxFee: bigint;
  nonce: bigint;
  expiry: bigint;
}): OffchainInference {
  if (!isAddress(opts.node, { strict: false }))
    throw new InvalidOffchainRequestError(`node ${opts.node} is not an address`);
  if (!isHex(opts.modelId, { strict: true }) || opts.modelId.length !== 66)
    throw new InvalidOffchainRequestError(`modelId ${opts.modelId} is not 32 bytes of hex`);
  if (!isHex(opts.input, { strict: true }))
    throw new InvalidOffchainRequestError("the input must be 0x-prefixed hex bytes");
  if (opts.maxFee < 0n || opts.maxFee > UINT256_MAX)
    throw new InvalidOffchainRequestError(`maxFee ${opts.maxFee} is not a uint256`);
  if (opts.nonce < 0n || opts.nonce > UINT256_MAX)
    throw new InvalidOffchainRequestError(`nonce ${opts.nonce} is not a uint256`);
  if (opts.expiry < 0n || opts.expiry > UINT64_MAX)
    throw new InvalidOffchainRequestError(`expiry ${opts.expiry} is not a uint64`);
  return {
    node: opts.node,
    modelId: opts.modelId,
    inputHash: inputHash(opts.input),
    maxFee: opts.maxFee,
    nonce: opts.nonce,
    expiry: opts.expiry,
  };
}

/** A fresh random uint256 nonce (a payer need not count; it must only never repeat). */
export function randomNonce(): bigint {
  const bytes = new Uint8Array(32);
  globalThis.crypto.getRandomValues(bytes);
  return hexToBigInt(`0x${Buffer.from(bytes).toString("hex")}`);
}

type SigningWallet = WalletClient<Transport, Chain | undefined, Account | undefined>;

/**
 * Sign an off-chain inference request with the wallet's account and build the body of
 * `POST /inference`. `nonce` defaults to a random uint256, `expiry` to 10 minutes from now.
 */
export async function signOffchainRequest(
  wallet: SigningWallet,
  opts: {
    domain: OffchainDomain;
    node: Address;
    modelId: Hex;
    input: Hex;
    maxFee: bigint;
    nonce?: bigint;
    expiry?: bigint;
  },
): Promise<OffchainRequestBody> {
  const account = wallet.account;
  if (account === undefined)
    throw new GradnetError("NO_WALLET", "signOffchainRequest needs a walletClient with an account");
  const message = offchainMessage({
    ...opts,
    nonce: opts.nonce ?? randomNonce(),
    expiry: opts.expiry ?? BigInt(Math.floor(Date.now() / 1000) + 600),
  });
  const signature = await wallet.signTypedData({ account, ...offchainTypedData(opts.domain, message) });
  return {
    payer: account.address,
    modelId: message.modelId,
    input: opts.input,
    maxFee: message.maxFee.toString(),
    nonce: message.nonce.toString(),
    expiry: Number(message.expiry),
    signature,
  };
}

// ------------------------------------------------------------------------------ HTTP

/** The answer of `POST /inference`, decoded and checked. */
export interface OffchainResult {
  requestId: bigint;
  payer: Address;
  node: Address;
  modelId: Hex;
  inputHash: Hex;
  outputHash: Hex;
  /** The canonical output bytes; keccak256 of them is `outputHash` (checked). */
  output: Hex;
  /** Decoded outputs, floats as doubles. */
  outputs: NamedTensor[];
  /** What the payer is charged, wei. */
  fee: bigint;
  /** The result waits for its batch; the node's next BatchPosted for this payer holds it. */
  batch: "pending";
}

/** A result's proof in a posted batch (`GET /batches/:batchId/proof/:requestId`). */
export interface BatchProof {
  batchId: bigint;
  root: Hex;
  payer: Address;
  modelId: Hex;
  requestId: bigint;
  inputHash: Hex;
  outputHash: Hex;
  fee: bigint;
  /** Pass to BatchSettlement.verifyLeaf / challengeLeaf, or `verifyBatchProof`. */
  proof: Hex[];
}

async function relayerJson<T>(url: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new GradnetError("RELAYER_UNREACHABLE", `cannot reach ${url}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body ?? {}) as { error?: string; message?: string };
    throw new RelayerRequestError(res.status, e.error ?? "HTTP_ERROR", e.message ?? text.slice(0, 200));
  }
  return body as T;
}

const base = (relayerUrl: string) => relayerUrl.replace(/\/+$/, "");

/** What a relayer says about its off-chain inference: the domain to sign in and the node. */
export function offchainInfo(relayerUrl: string): Promise<OffchainInfo> {
  return relayerJson<OffchainInfo>(`${base(relayerUrl)}/inference`);
}

/** Send a signed request; throws RelayerRequestError when the relayer refuses it. */
export async function postOffchainRequest(
  relayerUrl: string,
  body: OffchainRequestBody,
): Promise<OffchainResult> {
  const r = await relayerJson<{
    requestId: string;
    payer: Address;
    node: Address;
    modelId: Hex;
    inputHash: Hex;
    outputHash: Hex;
    output: Hex;
    fee: string;
  }>(`${base(relayerUrl)}/inference`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (outputHash(r.output) !== r.outputHash)
    throw new GradnetError(
      "OUTPUT_HASH_MISMATCH",
      `the relayer's output hashes to ${outputHash(r.output)}, not the outputHash ${r.outputHash} it commits to`,
    );
  if (r.inputHash !== inputHash(body.input))
    throw new GradnetError("INPUT_HASH_MISMATCH", `the relayer answered for input hash ${r.inputHash}`);
  return {
    requestId: BigInt(r.requestId),
    payer: r.payer,
    node: r.node,
    modelId: r.modelId,
    inputHash: r.inputHash,
    outputHash: r.outputHash,
    output: r.output,
    outputs: decodeTensors(r.output),
    fee: BigInt(r.fee),
    batch: "pending",
  };
}

/** The proof of `requestId` in batch `batchId`, from the relayer of the node that posted it. */
export async function batchProof(
  relayerUrl: string,
  batchId: bigint,
  requestId: bigint,
): Promise<BatchProof> {
  const r = await relayerJson<{
    batchId: string;
    root: Hex;
    payer: Address;
    modelId: Hex;
    requestId: string;
    inputHash: Hex;
    outputHash: Hex;
    fee: string;
    proof: Hex[];
  }>(`${base(relayerUrl)}/batches/${batchId}/proof/${requestId}`);
  return {
    ...r,
    batchId: BigInt(r.batchId),
    requestId: BigInt(r.requestId),
    fee: BigInt(r.fee),
  };
}
