/**
 * The pure parts of off-chain inference: the EIP-712 typed data a payer signs (checked against
 * ethers' independent implementation), the request id, the request body's parsing, and the
 * accounting of fees accepted but not yet posted.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AbiCoder,
  TypedDataEncoder,
  keccak256 as ethersKeccak,
  verifyTypedData as ethersVerify,
} from "ethers";
import { createWalletClient, hashTypedData, http, verifyTypedData, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import {
  FeeReservations,
  OffchainRequestError,
  fundsAvailable,
  offchainNonceKey,
  parseOffchainRequest,
} from "../../node/offchain";
import {
  FIXED_ADDRESSES,
  OFFCHAIN_INFERENCE_TYPES,
  encodeTensors,
  inputHash,
  offchainMessage,
  offchainRequestId,
  offchainTypedData,
  signOffchainRequest,
  type OffchainRequestBody,
} from "../../sdk";

const PAYER_KEY = `0x${"ab".repeat(32)}` as Hex;
const payer = privateKeyToAccount(PAYER_KEY);
const NODE = "0x00000000000000000000000000000000000000a1" as Address;
const MODEL = `0x${"11".repeat(32)}` as Hex;
const DOMAIN = { chainId: 31337, verifyingContract: FIXED_ADDRESSES.batchSettlement };
const INPUT = encodeTensors(
  [{ name: "input", dtype: "float32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
  6,
);
const UINT256_MAX = (1n << 256n) - 1n;
// A wallet that signs locally: signTypedData never reaches the (absent) RPC.
const wallet = createWalletClient({ account: payer, chain: hardhat, transport: http("http://127.0.0.1:1") });

const message = (over: Partial<Parameters<typeof offchainMessage>[0]> = {}) =>
  offchainMessage({
    node: NODE,
    modelId: MODEL,
    input: INPUT,
    maxFee: 10n ** 15n,
    nonce: 7n,
    expiry: 2_000_000_000n,
    ...over,
  });

describe("OffchainInference typed data", () => {
  test("hashes as ethers' EIP-712 encoder does, over the domain gradnet/1 and BatchSettlement", () => {
    const m = message();
    const td = offchainTypedData(DOMAIN, m);
    assert.deepEqual(td.domain, {
      name: "gradnet",
      version: "1",
      chainId: 31337,
      verifyingContract: FIXED_ADDRESSES.batchSettlement,
    });
    const ethersHash = TypedDataEncoder.hash(td.domain, { ...OFFCHAIN_INFERENCE_TYPES } as never, m);
    assert.equal(hashTypedData(td), ethersHash);
    assert.equal(
      TypedDataEncoder.from({ ...OFFCHAIN_INFERENCE_TYPES } as never).encodeType("OffchainInference"),
      "OffchainInference(address node,bytes32 modelId,bytes32 inputHash,uint256 maxFee,uint256 nonce,uint64 expiry)",
    );
    assert.equal(m.inputHash, inputHash(INPUT), "the message commits to sha256 of the input bytes");
  });

  test("signOffchainRequest builds a body whose signature recovers the payer, and only for that message", async () => {
    const body = await signOffchainRequest(wallet, {
      domain: DOMAIN,
      node: NODE,
      modelId: MODEL,
      input: INPUT,
      maxFee: 123n,
      nonce: 42n,
      expiry: 1_900_000_000n,
    });
    assert.equal(body.payer, payer.address);
    assert.equal(body.nonce, "42");
    assert.equal(body.maxFee, "123");
    assert.equal(body.expiry, 1_900_000_000);
    const m = message({ maxFee: 123n, nonce: 42n, expiry: 1_900_000_000n });
    const td = offchainTypedData(DOMAIN, m);
    assert.equal(await verifyTypedData({ address: payer.address, ...td, signature: body.signature }), true);
    assert.equal(
      ethersVerify(td.domain, { ...OFFCHAIN_INFERENCE_TYPES } as never, m, body.signature),
      payer.address,
    );
    for (const other of [
      offchainTypedData(DOMAIN, { ...m, maxFee: 124n }),
      offchainTypedData(DOMAIN, { ...m, node: payer.address }),
      offchainTypedData({ ...DOMAIN, chainId: 1 }, m),
      offchainTypedData({ ...DOMAIN, verifyingContract: FIXED_ADDRESSES.settlement }, m),
    ])
      assert.equal(
        await verifyTypedData({ address: payer.address, ...other, signature: body.signature }),
        false,
      );
  });

  test("a random nonce and a 10-minute expiry by default", async () => {
    const a = await signOffchainRequest(wallet, {
      domain: DOMAIN,
      node: NODE,
      modelId: MODEL,
      input: INPUT,
      maxFee: 1n,
    });
    const b = await signOffchainRequest(wallet, {
      domain: DOMAIN,
      node: NODE,
      modelId: MODEL,
      input: INPUT,
      maxFee: 1n,
    });
    assert.notEqual(a.nonce, b.nonce);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(a.expiry >= now + 590 && a.expiry <= now + 610);
  });

  test("offchainMessage refuses what cannot be signed", () => {
    assert.throws(() => message({ modelId: "0x11" }), /modelId/);
    assert.throws(() => message({ nonce: -1n }), /nonce/);
    assert.throws(() => message({ maxFee: UINT256_MAX + 1n }), /maxFee/);
    assert.throws(() => message({ expiry: 1n << 64n }), /expiry/);
    assert.throws(() => message({ input: "0xzz" as Hex }), /input/);
  });
});

describe("off-chain request ids", () => {
  test("are uint256(keccak256(abi.encode(payer, nonce)))", () => {
    for (const nonce of [0n, 1n, 42n, UINT256_MAX]) {
      const expected = BigInt(
        ethersKeccak(AbiCoder.defaultAbiCoder().encode(["address", "uint256"], [payer.address, nonce])),
      );
      assert.equal(offchainRequestId(payer.address, nonce), expected);
    }
    assert.notEqual(
      offchainRequestId(payer.address, 1n),
      offchainRequestId(NODE, 1n),
      "payers never collide",
    );
    assert.equal(
      offchainRequestId(payer.address.toLowerCase() as Address, 9n),
      offchainRequestId(payer.address, 9n),
      "the address's case does not matter",
    );
  });
});

describe("parseOffchainRequest", () => {
  const body = (over: Partial<OffchainRequestBody> = {}): OffchainRequestBody => ({
    payer: payer.address,
    modelId: MODEL,
    input: INPUT,
    maxFee: "1000",
    nonce: "5",
    expiry: 2_000_000_000,
    signature: "0x00",
    ...over,
  });

  test("builds the message for this node and the request id", () => {
    const r = parseOffchainRequest(body(), NODE);
    assert.deepEqual(r.message, message({ maxFee: 1000n, nonce: 5n }));
    assert.equal(r.requestId, offchainRequestId(payer.address, 5n));
  });

  test("refuses malformed fields with a 400 naming them", () => {
    const cases: [Partial<OffchainRequestBody>, RegExp][] = [
      [{ payer: "0x1234" as Address }, /payer/],
      [{ modelId: "0x12" as Hex }, /modelId/],
      [{ input: "0x123" as Hex }, /input/],
      [{ nonce: "-1" }, /nonce/],
      [{ nonce: (UINT256_MAX + 1n).toString() }, /nonce .* out of range/],
      [{ maxFee: "1e18" }, /maxFee/],
      [{ expiry: 1.5 }, /expiry/],
    ];
    for (const [over, re] of cases) {
      assert.throws(
        () => parseOffchainRequest(body(over), NODE),
        (err: unknown) => err instanceof OffchainRequestError && err.status === 400 && re.test(err.message),
      );
    }
  });
});

describe("fees accepted and not yet posted", () => {
  test("funds are the smaller of deposit and allowance, less what is pending", () => {
    assert.equal(fundsAvailable({ deposit: 100n, allowance: 60n, pending: 10n }), 50n);
    assert.equal(fundsAvailable({ deposit: 40n, allowance: UINT256_MAX, pending: 10n }), 30n);
    assert.equal(fundsAvailable({ deposit: 40n, allowance: 40n, pending: 50n }), -10n);
  });

  test("reservations never let two requests spend the same wei, and are released exactly", () => {
    const r = new FeeReservations();
    const other = NODE;
    assert.equal(r.tryReserve(payer.address, 30n, 50n), true);
    assert.equal(r.tryReserve(payer.address, 30n, 50n), false, "20 left, 30 asked");
    assert.equal(r.of(payer.address), 30n, "a refused reservation holds nothing");
    assert.equal(
      r.tryReserve(payer.address.toLowerCase() as Address, 20n, 50n),
      true,
      "exactly what is left",
    );
    assert.equal(r.tryReserve(other, 50n, 50n), true, "payers are separate");
    r.release(payer.address, 30n);
    assert.equal(r.of(payer.address), 20n);
    assert.equal(r.tryReserve(payer.address, 30n, 50n), true);
    r.release(payer.address, 50n);
    assert.equal(r.of(payer.address), 0n);
    assert.throws(() => r.release(payer.address, 1n), RangeError);
    assert.equal(r.tryReserve(payer.address, 1n, 0n), false, "nothing available");
  });
});

describe("nonce keys", () => {
  test("one Redis set per payer, node, contract and chain; the address's case does not matter", () => {
    const k = offchainNonceKey(31337, FIXED_ADDRESSES.batchSettlement, NODE, payer.address);
    assert.equal(
      k,
      `gradnet:offchain:31337:${FIXED_ADDRESSES.batchSettlement.toLowerCase()}:${NODE}:nonces:${payer.address.toLowerCase()}`,
    );
    assert.equal(
      offchainNonceKey(31337, FIXED_ADDRESSES.batchSettlement, NODE, payer.address.toLowerCase() as Address),
      k,
    );
    assert.notEqual(offchainNonceKey(1, FIXED_ADDRESSES.batchSettlement, NODE, payer.address), k);
  });
});
