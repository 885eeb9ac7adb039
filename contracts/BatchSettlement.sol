// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SystemContract} from "./base/SystemContract.sol";
import {IBatchSettlement, Batch, BatchState} from "./interfaces/IBatchSettlement.sol";
import {INodeRegistry, Roles} from "./interfaces/INodeRegistry.sol";
import {ISettlement, SettlementParams, DisputeVerdict} from "./interfaces/ISettlement.sol";
import {IDisputeSource} from "./interfaces/IDisputeSource.sol";

/// @title BatchSettlement
/// @notice Settles off-chain inference (gradnet's HTTP API, paid from a deposit) in batches: one
/// transaction escrows the fee of a whole batch and commits to its results with a Merkle root.
/// The challenge window, the protocol's share and the treasury are Settlement's; disputes run in
/// Settlement's dispute engine, which reports the verdict back through `onDisputeResolved`.
/// Invariant: this contract's balance equals `totalDeposits() + totalEscrow() + totalCredits()`.
contract BatchSettlement is IBatchSettlement, IDisputeSource, SystemContract {
    uint256 private constant _BPS = 10_000;

    INodeRegistry private immutable _NODES;
    ISettlement private immutable _SETTLEMENT;

    uint256 private _batchCount;
    uint256 private _totalDeposits;
    uint256 private _totalEscrow;
    uint256 private _totalCredits;
    mapping(uint256 batchId => Batch) private _batches;
    mapping(uint256 batchId => uint256 disputeId) private _disputes;
    mapping(uint256 batchId => mapping(uint256 requestId => bool)) private _leafChallenged;
    mapping(address payer => uint256) private _deposits;
    mapping(address payer => mapping(address node => uint256)) private _allowances;
    mapping(address account => uint256) private _credits;

    constructor(INodeRegistry nodes_, ISettlement settlement_) {
        if (address(nodes_) == address(0) || address(settlement_) == address(0)) revert System__ZeroAddress();
        _NODES = nodes_;
        _SETTLEMENT = settlement_;
    }

    /// @notice Set the owner (governance). Only the deployer, once.
    function initialize(address owner_) external initializer onlyDeployer {
        __SystemContract_init(owner_);
    }

    // ------------------------------------------------------------------------- payers

    /// @inheritdoc IBatchSettlement
    function deposit() external payable {
        if (msg.value == 0) revert BatchSettlement__ZeroAmount();
        uint256 balance = _deposits[msg.sender] + msg.value;
        _deposits[msg.sender] = balance;
        _totalDeposits += msg.value;
        emit Deposited(msg.sender, msg.value, balance);
    }

    /// @inheritdoc IBatchSettlement
    function withdraw(uint256 amount) external {
        if (amount == 0) revert BatchSettlement__ZeroAmount();
        uint256 balance = _deposits[msg.sender];
        if (amount > balance) revert BatchSettlement__InsufficientDeposit(msg.sender, balance, amount);
        unchecked {
            balance -= amount;
        }
        _deposits[msg.sender] = balance;
        _totalDeposits -= amount;
        emit DepositWithdrawn(msg.sender, amount, balance);
        _send(payable(msg.sender), amount);
    }

    /// @inheritdoc IBatchSettlement
    function approveNode(address node, uint256 allowance_) external {
        if (node == address(0)) revert System__ZeroAddress();
        _allowances[msg.sender][node] = allowance_;
        emit NodeApproved(msg.sender, node, allowance_);
    }

    // -------------------------------------------------------------------------- nodes

    /// @inheritdoc IBatchSettlement
    function postBatch(
        address payer,
        bytes32 modelId,
        bytes32 root,
        uint32 leafCount,
        uint256 totalFee
    ) external returns (uint256 batchId) {
        if (!_NODES.isActive(msg.sender, Roles.INFERENCE))
            revert BatchSettlement__NotInferenceNode(msg.sender);
        if (root == bytes32(0)) revert BatchSettlement__ZeroRoot();
        if (modelId == bytes32(0)) revert BatchSettlement__ZeroModelId();
        if (leafCount == 0) revert BatchSettlement__EmptyBatch();
        if (totalFee == 0) revert BatchSettlement__ZeroAmount();
        if (totalFee > type(uint96).max) revert BatchSettlement__FeeTooLarge(totalFee);
        uint256 allowed = _allowances[payer][msg.sender];
        if (totalFee > allowed)
            revert BatchSettlement__AllowanceExceeded(payer, msg.sender, allowed, totalFee);
        uint256 balance = _deposits[payer];
        if (totalFee > balance) revert BatchSettlement__InsufficientDeposit(payer, balance, totalFee);

        unchecked {
            if (allowed != type(uint256).max) _allowances[payer][msg.sender] = allowed - totalFee;
            _deposits[payer] = balance - totalFee;
        }
        _totalDeposits -= totalFee;
        _totalEscrow += totalFee;
        batchId = ++_batchCount;
        _batches[batchId] = Batch({
            root: root,
            node: msg.sender,
            postedAt: uint40(block.timestamp),
            leafCount: leafCount,
            state: BatchState.Posted,
            payer: payer,
            fee: uint96(totalFee)
        });
        emit BatchPosted(batchId, msg.sender, payer, modelId, root, leafCount, totalFee);
    }

    /// @inheritdoc IBatchSettlement
    function settleBatch(uint256 batchId) external {
        Batch storage b = _batches[batchId];
        _requireState(batchId, b.state, BatchState.Posted);
        SettlementParams memory p = _SETTLEMENT.params();
        uint64 at = uint64(b.postedAt) + p.challengeWindow;
        if (block.timestamp < at) revert BatchSettlement__ChallengeWindowOpen(batchId, at);

        b.state = BatchState.Settled;
        uint256 fee = b.fee;
        address node = b.node;
        uint256 protocolAmount = (fee * p.protocolFeeBps) / _BPS;
        uint256 nodeAmount = fee - protocolAmount;
        _credit(node, nodeAmount);
        _credit(p.treasury, protocolAmount);
        _totalEscrow -= fee;
        _totalCredits += fee;
        emit BatchSettled(batchId, node, nodeAmount, protocolAmount);
    }

    /// @inheritdoc IBatchSettlement
    function withdrawEarnings(address payable to) external returns (uint256 amount) {
        if (to == address(0)) revert System__ZeroAddress();
        amount = _credits[msg.sender];
        if (amount == 0) revert BatchSettlement__NothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        _totalCredits -= amount;
        emit EarningsWithdrawn(msg.sender, to, amount);
        _send(to, amount);
    }

    // ----------------------------------------------------------------------- disputes

    /// @inheritdoc IBatchSettlement
    function challengeLeaf(
        uint256 batchId,
        uint256 requestId,
        bytes32 inputHash,
        bytes32 outputHash,
        bytes32[] calldata proof,
        bytes32 claimedOutputHash
    ) external payable returns (uint256 disputeId) {
        Batch storage b = _batches[batchId];
        _requireState(batchId, b.state, BatchState.Posted);
        uint64 closesAt = uint64(b.postedAt) + _SETTLEMENT.params().challengeWindow;
        if (block.timestamp >= closesAt) revert BatchSettlement__ChallengeWindowClosed(batchId, closesAt);
        if (!MerkleProof.verifyCalldata(proof, b.root, _leafHash(requestId, inputHash, outputHash))) {
            revert BatchSettlement__InvalidProof(batchId, requestId);
        }
        // One dispute per leaf: the committee judged it. Other leaves stay open to challenge
        // while the window lasts, so a friendly challenge of a right leaf shields nothing.
        if (_leafChallenged[batchId][requestId])
            revert BatchSettlement__LeafAlreadyChallenged(batchId, requestId);
        _leafChallenged[batchId][requestId] = true;

        b.state = BatchState.Challenged;
        // Settlement checks the bond, the challenger's VERIFIER role and the two hashes.
        disputeId = _SETTLEMENT.openDispute{value: msg.value}(
            batchId,
            b.node,
            outputHash,
            claimedOutputHash,
            msg.sender
        );
        _disputes[batchId] = disputeId;
        emit LeafChallenged(
            batchId,
            disputeId,
            requestId,
            msg.sender,
            inputHash,
            outputHash,
            claimedOutputHash
        );
    }

    /// @notice Settlement's report of a verdict. A leaf found wrong voids the batch and returns
    /// its fee to the payer's deposit; otherwise the batch settles as usual.
    /// @dev Never reverts for a dispute this contract opened, so it cannot block Settlement.
    function onDisputeResolved(uint256 disputeId, uint256 subjectId, DisputeVerdict verdict) external {
        if (msg.sender != address(_SETTLEMENT)) revert BatchSettlement__OnlySettlement(msg.sender);
        Batch storage b = _batches[subjectId];
        if (b.state != BatchState.Challenged || _disputes[subjectId] != disputeId) {
            revert BatchSettlement__UnknownDispute(subjectId, disputeId);
        }
        uint256 refunded;
        if (verdict == DisputeVerdict.AccusedWrong) {
            b.state = BatchState.Voided;
            refunded = b.fee;
            _deposits[b.payer] += refunded;
            _totalEscrow -= refunded;
            _totalDeposits += refunded;
        } else if (verdict == DisputeVerdict.AccusedRight || verdict == DisputeVerdict.NoMajority) {
            b.state = BatchState.Posted;
        } else {
            revert BatchSettlement__UnexpectedVerdict(disputeId, verdict);
        }
        emit BatchDisputeResolved(subjectId, disputeId, verdict, refunded);
    }

    // -------------------------------------------------------------------------- views

    /// @inheritdoc IBatchSettlement
    function verifyLeaf(
        uint256 batchId,
        uint256 requestId,
        bytes32 inputHash,
        bytes32 outputHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _batches[batchId].root;
        return
            root != bytes32(0) &&
            MerkleProof.verifyCalldata(proof, root, _leafHash(requestId, inputHash, outputHash));
    }

    /// @inheritdoc IBatchSettlement
    function leafHash(
        uint256 requestId,
        bytes32 inputHash,
        bytes32 outputHash
    ) external pure returns (bytes32) {
        return _leafHash(requestId, inputHash, outputHash);
    }

    /// @inheritdoc IBatchSettlement
    function batch(uint256 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    /// @inheritdoc IBatchSettlement
    function batchCount() external view returns (uint256) {
        return _batchCount;
    }

    /// @inheritdoc IBatchSettlement
    function settleableAt(uint256 batchId) external view returns (uint64) {
        Batch storage b = _batches[batchId];
        if (b.state == BatchState.None) revert BatchSettlement__UnknownBatch(batchId);
        return uint64(b.postedAt) + _SETTLEMENT.params().challengeWindow;
    }

    /// @inheritdoc IBatchSettlement
    function disputeOf(uint256 batchId) external view returns (uint256) {
        return _disputes[batchId];
    }

    /// @inheritdoc IBatchSettlement
    function depositOf(address payer) external view returns (uint256) {
        return _deposits[payer];
    }

    /// @inheritdoc IBatchSettlement
    function allowance(address payer, address node) external view returns (uint256) {
        return _allowances[payer][node];
    }

    /// @inheritdoc IBatchSettlement
    function credits(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @inheritdoc IBatchSettlement
    function totalDeposits() external view returns (uint256) {
        return _totalDeposits;
    }

    /// @inheritdoc IBatchSettlement
    function totalEscrow() external view returns (uint256) {
        return _totalEscrow;
    }

    /// @inheritdoc IBatchSettlement
    function totalCredits() external view returns (uint256) {
        return _totalCredits;
    }

    /// @inheritdoc IBatchSettlement
    function nodeRegistry() external view returns (address) {
        return address(_NODES);
    }

    /// @inheritdoc IBatchSettlement
    function settlement() external view returns (address) {
        return address(_SETTLEMENT);
    }

    // ------------------------------------------------------------------------ private

    function _leafHash(
        uint256 requestId,
        bytes32 inputHash,
        bytes32 outputHash
    ) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(requestId, inputHash, outputHash))));
    }

    function _requireState(uint256 batchId, BatchState state, BatchState expected) private pure {
        if (state == expected) return;
        if (state == BatchState.None) revert BatchSettlement__UnknownBatch(batchId);
        revert BatchSettlement__WrongState(batchId, state);
    }

    function _credit(address account, uint256 amount) private {
        if (amount != 0) _credits[account] += amount;
    }

    function _send(address payable to, uint256 amount) private {
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert BatchSettlement__TransferFailed(to, amount);
    }
}
