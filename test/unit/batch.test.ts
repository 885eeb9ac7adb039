import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { keccak_256 } from "js-sha3";
import type { Hex } from "viem";
import {
  BatchLeafNotFoundError,
  InvalidBatchError,
  batchLeaf,
  batchLeaves,
  buildBatchTree,
  leafFor,
  loadBatchTree,
  proofFor,
  verifyBatchProof,
  type BatchLeaf,
} from "../../sdk";

/** keccak256 of raw bytes, with js-sha3 (the SDK hashes with viem). */
const keccak = (bytes: Buffer): Buffer => Buffer.from(keccak_256.arrayBuffer(bytes));
const word = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, "0"), "hex");
const bytes32 = (h: Hex): Buffer => Buffer.from(h.slice(2), "hex");
const hex = (b: Buffer): Hex => `0x${b.toString("hex")}`;
const h = (n: number): Hex => `0x${n.toString(16).padStart(64, "0")}`;

/** By hand: abi.encode of three static words is their concatenation; the leaf is hashed twice. */
function handLeaf(l: BatchLeaf): Buffer {
  return keccak(keccak(Buffer.concat([word(l.requestId), bytes32(l.inputHash), bytes32(l.outputHash)])));
}

const A: BatchLeaf = { requestId: 1n, inputHash: h(0xa1), outputHash: h(0xa2) };
const B: BatchLeaf = { requestId: 2n, inputHash: h(0xb1), outputHash: h(0xb2) };

test("a leaf is keccak256(keccak256(abi.encode(requestId, inputHash, outputHash)))", () => {
  assert.equal(batchLeaf(A), hex(handLeaf(A)));
  const big: BatchLeaf = {
    requestId: (1n << 256n) - 1n,
    inputHash: h(0),
    outputHash: `0x${"ff".repeat(32)}`,
  };
  assert.equal(batchLeaf(big), hex(handLeaf(big)));
});

test("a 2-leaf tree: root = keccak256(smaller leaf ‖ larger leaf), each proof is the other leaf", () => {
  const [la, lb] = [handLeaf(A), handLeaf(B)];
  const sorted = Buffer.compare(la, lb) <= 0 ? [la, lb] : [lb, la];
  const root = hex(keccak(Buffer.concat(sorted)));

  for (const order of [
    [A, B],
    [B, A],
  ]) {
    const tree = buildBatchTree(order);
    assert.equal(tree.root, root);
    assert.deepEqual(proofFor(tree, A.requestId), [hex(lb)]);
    assert.deepEqual(proofFor(tree, B.requestId), [hex(la)]);
  }
  assert.ok(verifyBatchProof(root, A, [hex(lb)]));
  assert.ok(verifyBatchProof(root, B, [hex(la)]));
  assert.ok(!verifyBatchProof(root, { ...A, outputHash: h(0xa3) }, [hex(lb)]));
  assert.ok(!verifyBatchProof(root, A, [hex(la)]));
  assert.ok(!verifyBatchProof(root, A, []));
});

test("a 1-leaf tree's root is the leaf and its proof is empty", () => {
  const tree = buildBatchTree([A]);
  assert.equal(tree.root, batchLeaf(A));
  assert.deepEqual(proofFor(tree, A.requestId), []);
  assert.ok(verifyBatchProof(tree.root as Hex, A, []));
});

const leafArb = fc.record({
  requestId: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
  inputHash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hex(Buffer.from(b))),
  outputHash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hex(Buffer.from(b))),
});
const batchArb = fc.uniqueArray(leafArb, { minLength: 1, maxLength: 40, selector: (l) => l.requestId });

test("every leaf's proof verifies against the root; a changed output hash or another root does not", () => {
  fc.assert(
    fc.property(batchArb, fc.nat(), (leaves, pick) => {
      const tree = buildBatchTree(leaves);
      const root = tree.root as Hex;
      for (const leaf of leaves) {
        const proof = proofFor(tree, leaf.requestId);
        assert.ok(verifyBatchProof(root, leaf, proof));
        assert.ok(tree.verify([leaf.requestId.toString(), leaf.inputHash, leaf.outputHash], proof));
      }
      const leaf = leaves[pick % leaves.length]!;
      const proof = proofFor(tree, leaf.requestId);
      const flipped = (leaf.outputHash.slice(0, 65) + (leaf.outputHash.endsWith("0") ? "1" : "0")) as Hex;
      assert.ok(!verifyBatchProof(root, { ...leaf, outputHash: flipped }, proof));
      assert.ok(!verifyBatchProof(batchLeaf({ ...leaf, requestId: leaf.requestId ^ 1n }), leaf, proof));
    }),
    { numRuns: 60 },
  );
});

test("a tree survives dump → JSON → load with the same root, leaves and proofs", () => {
  const leaves = Array.from({ length: 9 }, (_, i) => ({
    requestId: BigInt(i) * 1_000_003n,
    inputHash: h(i + 1),
    outputHash: h(1000 + i),
  }));
  const tree = buildBatchTree(leaves);
  const loaded = loadBatchTree(JSON.parse(JSON.stringify(tree.dump())));
  assert.equal(loaded.root, tree.root);
  assert.deepEqual(
    batchLeaves(loaded).sort((a, b) => Number(a.requestId - b.requestId)),
    leaves,
  );
  for (const l of leaves) assert.deepEqual(proofFor(loaded, l.requestId), proofFor(tree, l.requestId));
  assert.deepEqual(leafFor(loaded, leaves[3]!.requestId), leaves[3]);
  assert.equal(leafFor(loaded, 7n), undefined);
  assert.throws(
    () => loadBatchTree({ ...tree.dump(), leafEncoding: ["uint256", "bytes32"] }),
    InvalidBatchError,
  );
});

test("bad batches are refused with typed errors", () => {
  assert.throws(() => buildBatchTree([]), InvalidBatchError);
  assert.throws(() => buildBatchTree([A, { ...B, requestId: A.requestId }]), /appears twice/);
  assert.throws(() => buildBatchTree([{ ...A, inputHash: "0x1234" }]), /inputHash of request 1/);
  assert.throws(() => batchLeaf({ ...A, requestId: -1n }), InvalidBatchError);
  assert.throws(() => batchLeaf({ ...A, requestId: 1n << 256n }), InvalidBatchError);
  assert.throws(
    () => proofFor(buildBatchTree([A, B]), 3n),
    (e: unknown) =>
      e instanceof BatchLeafNotFoundError && e.code === "BATCH_LEAF_NOT_FOUND" && e.requestId === 3n,
  );
});
