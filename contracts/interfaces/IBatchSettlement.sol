// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DisputeVerdict} from "./ISettlement.sol";

/// @notice Where a batch stands.
enum BatchState {
    None, // never posted
    Posted, // fee escrowed, challenge window running (or passed, waiting for `settleBatch`)
    Challenged, // a leaf is disputed in Settlement; the batch cannot settle until the verdict
    Settled, // fee credited to the node and the treasury
    Voided // a leaf was found wrong: the fee went back to the payer's deposit
}

/// @notice One posted batch; three storage slots (field order is the packing).
struct Batch {
    bytes32 root; // Merkle root of the batch's leaves (see docs/protocol.md, "Batch settlement")
    address node; // the inference node that posted it and is paid for it
    uint40 postedAt; // block timestamp of `postBatch`; the challenge window runs from here
    uint32 leafCount; // how many results the node says the tree holds (informational)
    BatchState state;
    address payer; // whose deposit paid the fee
    uint96 fee; // escrowed wei
}

/// @title Batch settlement: many off-chain inference results paid and made challengeable in
/// one transaction.
/// @notice A payer (a dApp using gradnet's HTTP inference) deposits native token and approves
/// inference nodes up to an allowance. A node posts the Merkle root of a batch of results
/// `(requestId, inputHash, outputHash)` for one payer and one model; the fee moves from the
/// payer's deposit into escrow. Anyone can check a result against the root with a proof. During
/// the challenge window (Settlement's) an active verifier can dispute one leaf through
/// Settlement's dispute engine; a batch with a leaf found wrong is void and its fee goes back to
/// the payer. After the window the fee is credited to the node, less the protocol's share.
/// Every payout is a credit its owner withdraws. Invariant: this contract's balance equals
/// `totalDeposits() + totalEscrow() + totalCredits()`.
interface IBatchSettlement {
    event Deposited(address indexed payer, uint256 amount, uint256 balance);
    event DepositWithdrawn(address indexed payer, uint256 amount, uint256 balance);
    /// @notice `allowance` is how much more `node` may charge `payer`; type(uint256).max is unlimited.
    event NodeApproved(address indexed payer, address indexed node, uint256 allowance);
    /// @notice `modelId` is the model every leaf of the batch ran; verifiers re-execute with it.
    event BatchPosted(
        uint256 indexed batchId,
        address indexed node,
        address indexed payer,
        bytes32 modelId,
        bytes32 root,
        uint32 leafCount,
        uint256 totalFee
    );
    event BatchSettled(
        uint256 indexed batchId,
        address indexed node,
        uint256 nodeAmount,
        uint256 protocolAmount
    );
    /// @notice A verifier disputed one leaf; Settlement's dispute `disputeId` decides it.
    event LeafChallenged(
        uint256 indexed batchId,
        uint256 indexed disputeId,
        uint256 indexed requestId,
        address challenger,
        bytes32 inputHash,
        bytes32 outputHash,
        bytes32 claimedOutputHash
    );
    /// @notice The dispute ended. `refunded` is the fee returned to the payer's deposit: the
    /// whole fee when the leaf was found wrong (the batch is void), else 0 (it settles as usual).
    event BatchDisputeResolved(
        uint256 indexed batchId,
        uint256 indexed disputeId,
        DisputeVerdict verdict,
        uint256 refunded
    );
    event EarningsWithdrawn(address indexed account, address indexed to, uint256 amount);

    error BatchSettlement__ZeroAmount();
    error BatchSettlement__InsufficientDeposit(address payer, uint256 deposit, uint256 amount);
    error BatchSettlement__NotInferenceNode(address caller);
    error BatchSettlement__ZeroRoot();
    error BatchSettlement__ZeroModelId();
    error BatchSettlement__EmptyBatch();
    error BatchSettlement__FeeTooLarge(uint256 fee);
    error BatchSettlement__AllowanceExceeded(address payer, address node, uint256 allowance, uint256 fee);
    error BatchSettlement__UnknownBatch(uint256 batchId);
    error BatchSettlement__WrongState(uint256 batchId, BatchState state);
    error BatchSettlement__ChallengeWindowOpen(uint256 batchId, uint64 settleableAt);
    error BatchSettlement__ChallengeWindowClosed(uint256 batchId, uint64 closedAt);
    error BatchSettlement__InvalidProof(uint256 batchId, uint256 requestId);
    error BatchSettlement__LeafAlreadyChallenged(uint256 batchId, uint256 requestId);
    error BatchSettlement__OnlySettlement(address caller);
    error BatchSettlement__UnknownDispute(uint256 batchId, uint256 disputeId);
    error BatchSettlement__UnexpectedVerdict(uint256 disputeId, DisputeVerdict verdict);
    error BatchSettlement__NothingToWithdraw(address account);
    error BatchSettlement__TransferFailed(address to, uint256 amount);

    /// @notice Add `msg.value` to the caller's deposit.
    function deposit() external payable;

    /// @notice Take `amount` of the caller's deposit back (what no batch has escrowed).
    function withdraw(uint256 amount) external;

    /// @notice Let `node` charge the caller's deposit up to `allowance` in total (replaces the
    /// previous allowance; each batch lowers it by its fee unless it is type(uint256).max).
    function approveNode(address node, uint256 allowance) external;

    /// @notice Post a batch of results computed for `payer` with model `modelId`, and escrow its
    /// fee from the payer's deposit. Only an active INFERENCE node, within the payer's allowance.
    /// @param root Merkle root over the leaves, as `leafHash` computes them, with sorted pairs.
    /// @param leafCount How many results the batch holds.
    /// @param totalFee What the payer owes for the whole batch, in wei.
    function postBatch(
        address payer,
        bytes32 modelId,
        bytes32 root,
        uint32 leafCount,
        uint256 totalFee
    ) external returns (uint256 batchId);

    /// @notice Pay out a batch whose challenge window has passed and that has no open dispute:
    /// the node is credited the fee less the protocol's share, which goes to the treasury.
    /// Anyone may call.
    function settleBatch(uint256 batchId) external;

    /// @notice Dispute one result of a batch inside its challenge window, claiming the correct
    /// output hash. The caller must be an active VERIFIER; `msg.value` is the challenge bond,
    /// forwarded to Settlement, which draws the committee and decides. One open dispute per batch.
    /// @param proof Merkle proof that `(requestId, inputHash, outputHash)` is a leaf of the batch.
    function challengeLeaf(
        uint256 batchId,
        uint256 requestId,
        bytes32 inputHash,
        bytes32 outputHash,
        bytes32[] calldata proof,
        bytes32 claimedOutputHash
    ) external payable returns (uint256 disputeId);

    /// @notice Withdraw the caller's whole credit (earnings of settled batches) to `to`.
    function withdrawEarnings(address payable to) external returns (uint256 amount);

    /// @notice Whether `(requestId, inputHash, outputHash)` is a leaf of batch `batchId`.
    function verifyLeaf(
        uint256 batchId,
        uint256 requestId,
        bytes32 inputHash,
        bytes32 outputHash,
        bytes32[] calldata proof
    ) external view returns (bool);

    /// @notice The leaf of one result:
    /// keccak256(bytes.concat(keccak256(abi.encode(requestId, inputHash, outputHash)))).
    function leafHash(
        uint256 requestId,
        bytes32 inputHash,
        bytes32 outputHash
    ) external pure returns (bytes32);

    function batch(uint256 batchId) external view returns (Batch memory);
    /// @notice Batches posted so far; ids run from 1 to `batchCount()`.
    function batchCount() external view returns (uint256);
    /// @notice When `settleBatch` may first succeed (with today's challenge window).
    function settleableAt(uint256 batchId) external view returns (uint64);
    /// @notice The dispute about `batchId`, or 0 when it never had one. A batch keeps its last.
    function disputeOf(uint256 batchId) external view returns (uint256);
    function depositOf(address payer) external view returns (uint256);
    function allowance(address payer, address node) external view returns (uint256);
    function credits(address account) external view returns (uint256);
    function totalDeposits() external view returns (uint256);
    function totalEscrow() external view returns (uint256);
    function totalCredits() external view returns (uint256);
    function nodeRegistry() external view returns (address);
    function settlement() external view returns (address);
}
