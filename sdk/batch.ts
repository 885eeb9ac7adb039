/**
 * Batch settlement leaves, trees and proofs (docs/protocol.md, "Batch settlement").
 *
 * A batch commits to many off-chain results with one Merkle root. Each result is the leaf
 *
 *   keccak256(bytes.concat(keccak256(abi.encode(uint256 requestId, bytes32 inputHash, bytes32 outputHash))))
 *
 * and inner nodes hash their two children in sorted order: OpenZeppelin's StandardMerkleTree,
 * which `BatchSettlement` checks with OpenZeppelin's `MerkleProof`.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { concat, encodeAbiParameters, isHex, keccak256, type Hex } from "viem";
import { BatchLeafNotFoundError, InvalidBatchError } from "./errors";

/** The ABI types of a leaf's fields, in order. */
export const BATCH_LEAF_ENCODING = ["uint256", "bytes32", "bytes32"] as const;

/** One result in a batch. */
export interface BatchLeaf {
  requestId: bigint;
  inputHash: Hex;
  outputHash: Hex;
}

/**
 * A leaf as the tree holds it: the request id as a decimal string, so that a tree's `dump()` is
 * plain JSON that can be written to disk and `loadBatchTree` read back.
 */
export type BatchTreeValue = [requestId: string, inputHash: Hex, outputHash: Hex];
export type BatchTree = StandardMerkleTree<BatchTreeValue>;
/** What `tree.dump()` returns: plain JSON. */
export type BatchTreeDump = ReturnType<BatchTree["dump"]>;

const UINT256_MAX = (1n << 256n) - 1n;
const LEAF_PARAMS = BATCH_LEAF_ENCODING.map((type) => ({ type }));

function checkLeaf(leaf: BatchLeaf): void {
  if (typeof leaf.requestId !== "bigint" || leaf.requestId < 0n || leaf.requestId > UINT256_MAX)
    throw new InvalidBatchError(`requestId ${String(leaf.requestId)} is not a uint256`);
  for (const field of ["inputHash", "outputHash"] as const) {
    const v = leaf[field];
    if (!isHex(v, { strict: true }) || v.length !== 66)
      throw new InvalidBatchError(
        `${field} of request ${leaf.requestId} is not 32 bytes of hex: ${String(v)}`,
      );
  }
}

/** The leaf hash of one result, as `BatchSettlement.leafHash` computes it. */
export function batchLeaf(leaf: BatchLeaf): Hex {
  checkLeaf(leaf);
  const encoded = encodeAbiParameters(LEAF_PARAMS, [leaf.requestId, leaf.inputHash, leaf.outputHash]);
  return keccak256(keccak256(encoded));
}

/** The Merkle tree of a batch. Request ids must be distinct; a batch has at least one leaf. */
export function buildBatchTree(leaves: readonly BatchLeaf[]): BatchTree {
  if (leaves.length === 0) throw new InvalidBatchError("a batch needs at least one result");
  const seen = new Set<bigint>();
  const values: BatchTreeValue[] = [];
  for (const leaf of leaves) {
    checkLeaf(leaf);
    if (seen.has(leaf.requestId))
      throw new InvalidBatchError(`request ${leaf.requestId} appears twice in the batch`);
    seen.add(leaf.requestId);
    values.push([
      leaf.requestId.toString(),
      leaf.inputHash.toLowerCase() as Hex,
      leaf.outputHash.toLowerCase() as Hex,
    ]);
  }
  return StandardMerkleTree.of(values, [...BATCH_LEAF_ENCODING]);
}

/** A tree from its `dump()` (as stored on disk); checks the format and the leaf encoding. */
export function loadBatchTree(dump: BatchTreeDump): BatchTree {
  const encoding = (dump as { leafEncoding?: unknown }).leafEncoding;
  if (
    dump.format !== "standard-v1" ||
    !Array.isArray(encoding) ||
    encoding.join(",") !== BATCH_LEAF_ENCODING.join(",")
  ) {
    throw new InvalidBatchError(
      `not a batch tree: format ${String(dump.format)}, leaf encoding ${JSON.stringify(encoding)}`,
    );
  }
  return StandardMerkleTree.load(dump);
}

function toLeaf(value: BatchTreeValue): BatchLeaf {
  return { requestId: BigInt(value[0]), inputHash: value[1], outputHash: value[2] };
}

/** Every result in the tree, in tree order. */
export function batchLeaves(tree: BatchTree): BatchLeaf[] {
  return Array.from(tree.entries(), ([, value]) => toLeaf(value));
}

function indexOf(tree: BatchTree, requestId: bigint): number | undefined {
  const key = requestId.toString();
  for (const [i, value] of tree.entries()) if (value[0] === key) return i;
  return undefined;
}

/** The result for `requestId` in the tree, if the batch holds it. */
export function leafFor(tree: BatchTree, requestId: bigint): BatchLeaf | undefined {
  const i = indexOf(tree, requestId);
  return i === undefined ? undefined : toLeaf(tree.at(i)!);
}

/** The proof that the result for `requestId` is in the tree; throws BatchLeafNotFoundError. */
export function proofFor(tree: BatchTree, requestId: bigint): Hex[] {
  const i = indexOf(tree, requestId);
  if (i === undefined) throw new BatchLeafNotFoundError(requestId, tree.root as Hex);
  return tree.getProof(i) as Hex[];
}

/**
 * Whether `proof` shows that `leaf` is in the tree with root `root`: the same computation as
 * OpenZeppelin's `MerkleProof.verify` (hash the leaf, then fold each proof element in with the
 * pair sorted). Pure; needs no tree.
 */
export function verifyBatchProof(root: Hex, leaf: BatchLeaf, proof: readonly Hex[]): boolean {
  let node = batchLeaf(leaf);
  for (const sibling of proof) {
    if (!isHex(sibling, { strict: true }) || sibling.length !== 66) return false;
    const [a, b] = BigInt(node) <= BigInt(sibling) ? [node, sibling] : [sibling, node];
    node = keccak256(concat([a, b]));
  }
  return node.toLowerCase() === root.toLowerCase();
}
