// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SystemContract} from "./base/SystemContract.sol";
import {
    ISettlement,
    SettlementParams,
    DisputeParams,
    Dispute,
    DisputeVerdict
} from "./interfaces/ISettlement.sol";
import {IDisputeSource} from "./interfaces/IDisputeSource.sol";
import {IInferenceHub, Request, Fulfillment, Agreement} from "./interfaces/IInferenceHub.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {INodeRegistry, Roles} from "./interfaces/INodeRegistry.sol";

/// @title Settlement
/// @notice A fulfilled request's fee stays escrowed in the hub through the challenge window.
/// Finalising moves it here and splits it into credits for the node, the model's owner and the
/// protocol treasury; refunds are credited to requesters. Owners withdraw their credit.
///
/// Inside the window an active verifier may challenge a result with a bond, claiming another
/// output hash. A committee of verifiers, drawn from the hash of the block after the challenge,
/// votes on the hash it computes; the majority of votes cast decides. A node found wrong is
/// slashed and its fee refunded; a challenger found wrong loses its bond; committee members who
/// did not vote lose a small stake; majority voters share the forfeits with the treasury.
/// Invariant: this contract's balance equals `totalCredits() + bondsHeld()`.
contract Settlement is ISettlement, SystemContract {
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 2_000;
    uint64 public constant MAX_CHALLENGE_WINDOW = 30 days;
    uint8 public constant MAX_COMMITTEE_SIZE = 15;
    uint32 public constant MAX_VOTING_PERIOD = 30 days;
    /// @dev A small verifier set is swept in order (from a random start) after random probes.
    uint256 private constant _MAX_SWEEP = 64;
    uint256 private constant _BPS = 10_000;

    IInferenceHub private immutable _HUB;
    IModelRegistry private immutable _MODELS;
    INodeRegistry private immutable _NODES;

    address private _treasury;
    uint64 private _challengeWindow;
    uint16 private _protocolFeeBps;

    uint256 private _totalCredits;
    mapping(address account => uint256) private _credits;

    DisputeParams private _disputeParams;
    uint256 private _bondsHeld;
    uint256 private _disputeCount;
    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(uint256 disputeId => mapping(address voter => bytes32 outputHash)) private _votes;
    mapping(uint256 requestId => uint256 disputeId) private _requestDisputes;
    mapping(address source => bool) private _disputeSources;
    mapping(uint256 requestId => mapping(address node => bool)) private _dissentSlashed;

    constructor(IInferenceHub hub_, IModelRegistry models_, INodeRegistry nodes_) {
        if (address(hub_) == address(0) || address(models_) == address(0) || address(nodes_) == address(0)) {
            revert System__ZeroAddress();
        }
        _HUB = hub_;
        _MODELS = models_;
        _NODES = nodes_;
    }

    function initialize(
        address owner_,
        SettlementParams calldata params_,
        DisputeParams calldata disputeParams_
    ) external initializer onlyDeployer {
        __SystemContract_init(owner_);
        _setParams(params_);
        _setDisputeParams(disputeParams_);
    }

    /// @notice Governance: change the treasury, the challenge window and the protocol's share.
    function setParams(SettlementParams calldata params_) external onlyOwner {
        _setParams(params_);
    }

    /// @inheritdoc ISettlement
    function setDisputeParams(DisputeParams calldata params_) external onlyOwner {
        _setDisputeParams(params_);
    }

    /// @inheritdoc ISettlement
    function setDisputeSource(address source, bool allowed) external onlyOwner {
        if (source == address(0)) revert System__ZeroAddress();
        _disputeSources[source] = allowed;
        emit DisputeSourceChanged(source, allowed);
    }

    /// @notice Only the hub (released fees) and the node registry (slashed stake) pay in. Both
    /// happen only inside this contract's own calls, which credit the value in the same
    /// transaction.
    receive() external payable {
        if (msg.sender != address(_HUB) && msg.sender != address(_NODES))
            revert Settlement__UnexpectedPayment(msg.sender);
    }

    /// @inheritdoc ISettlement
    function finalize(Request calldata request, Fulfillment calldata fulfillment) external {
        _finalize(request, fulfillment, _challengeWindow, _protocolFeeBps, _treasury);
    }

    /// @inheritdoc ISettlement
    function finalizeBatch(
        Request[] calldata requests,
        Fulfillment[] calldata fulfillments
    ) external returns (uint256 settled) {
        if (requests.length != fulfillments.length) revert Settlement__InvalidParams();
        uint64 window = _challengeWindow;
        uint16 protocolFeeBps = _protocolFeeBps;
        address treasury = _treasury;
        for (uint256 i = 0; i < requests.length; ++i) {
            settled += _finalize(requests[i], fulfillments[i], window, protocolFeeBps, treasury);
        }
    }

    function _finalize(
        Request calldata request,
        Fulfillment calldata fulfillment,
        uint64 window,
        uint16 protocolFeeBps,
        address treasury
    ) private returns (uint256 fee) {
        if (request.redundancy > 1) revert Settlement__RedundantRequest(request.requestId);
        uint256 nodeAmount;
        uint256 ownerAmount;
        uint256 protocolAmount;
        address modelOwner;
        (fee, nodeAmount, ownerAmount, protocolAmount, modelOwner) = _release(
            request,
            fulfillment,
            window,
            protocolFeeBps,
            treasury
        );
        _credit(fulfillment.node, nodeAmount);
        emit Settled(
            request.requestId,
            fulfillment.node,
            modelOwner,
            nodeAmount,
            ownerAmount,
            protocolAmount
        );
    }

    /// @dev After the window: take the fee from the hub, credit the owner's and the protocol's
    /// shares, and return the node share for the caller to credit.
    function _release(
        Request calldata request,
        Fulfillment calldata fulfillment,
        uint64 window,
        uint16 protocolFeeBps,
        address treasury
    )
        private
        returns (
            uint256 fee,
            uint256 nodeAmount,
            uint256 ownerAmount,
            uint256 protocolAmount,
            address modelOwner
        )
    {
        uint64 at = fulfillment.fulfilledAt + window;
        if (block.timestamp < at) revert Settlement__ChallengeWindowOpen(request.requestId, at);
        // The hub checks `fulfillment` against its commitment and moves the fee here.
        fee = _HUB.release(request, fulfillment);
        uint16 ownerShareBps;
        (modelOwner, ownerShareBps) = _MODELS.payoutOf(request.modelId);
        ownerAmount = (fee * ownerShareBps) / _BPS;
        protocolAmount = (fee * protocolFeeBps) / _BPS;
        nodeAmount = fee - ownerAmount - protocolAmount;
        _credit(modelOwner, ownerAmount);
        _credit(treasury, protocolAmount);
        _totalCredits += fee;
    }

    /// @inheritdoc ISettlement
    function finalizeRedundant(
        Request calldata request,
        Fulfillment calldata fulfillment,
        address[] calldata nodes
    ) external {
        uint256 requestId = request.requestId;
        if (request.redundancy < 2) revert Settlement__NotRedundant(requestId);
        Agreement memory a = _HUB.agreementOf(requestId);
        if (nodes.length == 0 || nodes.length != a.agreeing) revert Settlement__NotAgreeingNodes(requestId);
        for (uint256 i = 0; i < nodes.length; ++i) {
            if (_HUB.answerOf(requestId, nodes[i]) != a.agreedKey)
                revert Settlement__NotAgreeingNodes(requestId);
            for (uint256 j = 0; j < i; ++j)
                if (nodes[j] == nodes[i]) revert Settlement__NotAgreeingNodes(requestId);
        }
        (, uint256 nodeAmount, uint256 ownerAmount, uint256 protocolAmount, ) = _release(
            request,
            fulfillment,
            _challengeWindow,
            _protocolFeeBps,
            _treasury
        );
        uint256 each = nodeAmount / nodes.length;
        for (uint256 i = 0; i < nodes.length; ++i) _credit(nodes[i], each);
        // The division's remainder (under one wei per node) goes to the first node.
        _credit(nodes[0], nodeAmount - each * nodes.length);
        emit SettledRedundant(requestId, nodes, each, ownerAmount, protocolAmount);
    }

    /// @inheritdoc ISettlement
    function slashDissenter(uint256 requestId, address node) external returns (uint256 slashed) {
        bytes32 agreed = _HUB.agreementOf(requestId).agreedKey;
        if (agreed == bytes32(0)) revert Settlement__NoAgreement(requestId);
        bytes32 answer = _HUB.answerOf(requestId, node);
        if (answer == bytes32(0) || answer == agreed || _dissentSlashed[requestId][node]) {
            revert Settlement__NotDissenter(requestId, node);
        }
        _dissentSlashed[requestId][node] = true;
        slashed = _NODES.slash(node, _disputeParams.slashAmount, true);
        _credit(_treasury, slashed);
        _totalCredits += slashed;
        emit DissenterSlashed(requestId, node, slashed);
    }

    /// @inheritdoc ISettlement
    function creditRefund(uint256 requestId, address requester) external payable {
        if (msg.sender != address(_HUB)) revert Settlement__OnlyHub(msg.sender);
        _credit(requester, msg.value);
        _totalCredits += msg.value;
        emit RefundCredited(requestId, requester, msg.value);
    }

    /// @inheritdoc ISettlement
    function withdraw(address payable to) external returns (uint256 amount) {
        if (to == address(0)) revert System__ZeroAddress();
        amount = _credits[msg.sender];
        if (amount == 0) revert Settlement__NothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        _totalCredits -= amount;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert Settlement__TransferFailed(to, amount);
    }

    // ------------------------------------------------------------------------------ disputes

    /// @inheritdoc ISettlement
    function challenge(
        Request calldata request,
        Fulfillment calldata fulfillment,
        bytes32 claimedOutputHash
    ) external payable returns (uint256 disputeId) {
        uint256 requestId = request.requestId;
        // A redundant result is checked by its own nodes' agreement; dissenters are slashed.
        if (request.redundancy > 1) revert Settlement__RedundantRequest(requestId);
        uint256 existing = _requestDisputes[requestId];
        if (existing != 0) revert Settlement__AlreadyChallenged(requestId, existing);
        uint64 closesAt = fulfillment.fulfilledAt + _challengeWindow;
        if (block.timestamp >= closesAt) revert Settlement__ChallengeWindowClosed(requestId, closesAt);
        disputeId = _open(
            address(_HUB),
            requestId,
            fulfillment.node,
            fulfillment.outputHash,
            claimedOutputHash,
            msg.sender
        );
        _requestDisputes[requestId] = disputeId;
        // The hub checks that this fulfilment is the one recorded, and holds the fee.
        _HUB.holdForDispute(request, fulfillment);
    }

    /// @inheritdoc ISettlement
    function openDispute(
        uint256 subjectId,
        address accused,
        bytes32 accusedHash,
        bytes32 claimedHash,
        address challenger
    ) external payable returns (uint256) {
        if (!_disputeSources[msg.sender]) revert Settlement__NotDisputeSource(msg.sender);
        return _open(msg.sender, subjectId, accused, accusedHash, claimedHash, challenger);
    }

    function _open(
        address source,
        uint256 subjectId,
        address accused,
        bytes32 accusedHash,
        bytes32 claimedHash,
        address challenger
    ) private returns (uint256 disputeId) {
        DisputeParams memory p = _disputeParams;
        if (msg.value != p.challengeBond) revert Settlement__WrongBond(msg.value, p.challengeBond);
        if (!_NODES.isActive(challenger, Roles.VERIFIER)) revert Settlement__NotVerifier(challenger);
        if (claimedHash == bytes32(0)) revert Settlement__ZeroHash();
        if (claimedHash == accusedHash) revert Settlement__SameHash(claimedHash);
        disputeId = ++_disputeCount;
        Dispute storage d = _disputes[disputeId];
        d.source = source;
        d.openedAt = uint64(block.timestamp);
        d.drawBlock = uint64(block.number + 1);
        d.challenger = challenger;
        d.votingEndsAt = uint64(block.timestamp) + p.votingPeriod;
        d.accused = accused;
        d.bond = uint96(msg.value);
        d.subjectId = subjectId;
        d.accusedHash = accusedHash;
        d.claimedHash = claimedHash;
        _bondsHeld += msg.value;
        emit DisputeOpened(
            disputeId,
            source,
            subjectId,
            challenger,
            accused,
            accusedHash,
            claimedHash,
            d.drawBlock,
            d.votingEndsAt
        );
    }

    /// @inheritdoc ISettlement
    function drawCommittee(uint256 disputeId) external returns (address[] memory) {
        Dispute storage d = _pending(disputeId);
        if (d.committee.length != 0) revert Settlement__CommitteeAlreadyDrawn(disputeId);
        return _draw(disputeId, d);
    }

    /// @inheritdoc ISettlement
    function vote(uint256 disputeId, bytes32 outputHash) external {
        Dispute storage d = _pending(disputeId);
        if (outputHash == bytes32(0)) revert Settlement__ZeroHash();
        if (block.timestamp > d.votingEndsAt) revert Settlement__VotingClosed(disputeId, d.votingEndsAt);
        address[] memory committee = d.committee;
        if (committee.length == 0) committee = _draw(disputeId, d);
        if (!_contains(committee, committee.length, msg.sender)) {
            revert Settlement__NotCommitteeMember(disputeId, msg.sender);
        }
        if (_votes[disputeId][msg.sender] != bytes32(0))
            revert Settlement__AlreadyVoted(disputeId, msg.sender);
        _votes[disputeId][msg.sender] = outputHash;
        ++d.votesCast;
        emit VoteCast(disputeId, msg.sender, outputHash);
    }

    /// @inheritdoc ISettlement
    function resolveChallenge(
        Request calldata request,
        Fulfillment calldata fulfillment
    ) external returns (DisputeVerdict verdict) {
        uint256 disputeId = _requestDisputes[request.requestId];
        if (disputeId == 0) revert Settlement__NotChallenged(request.requestId);
        Dispute storage d = _disputes[disputeId];
        verdict = _resolve(disputeId, d);
        // The hub checks the fulfilment against its record, then clears or overturns it.
        _HUB.endDispute(request, fulfillment, verdict == DisputeVerdict.AccusedWrong, d.majorityHash);
    }

    /// @inheritdoc ISettlement
    function resolveDispute(uint256 disputeId) external returns (DisputeVerdict verdict) {
        Dispute storage d = _disputes[disputeId];
        address source = d.source;
        if (source == address(_HUB)) revert Settlement__WrongSubject(disputeId);
        verdict = _resolve(disputeId, d);
        IDisputeSource(source).onDisputeResolved(disputeId, d.subjectId, verdict);
    }

    /// @dev What a resolution pays: the challenger, the majority voters, the treasury.
    struct Payout {
        uint256 slashed;
        uint256 challenger;
        uint256 pot; // forfeited bond, the slash less the challenger's reward, absent penalties
        uint256 voters;
    }

    function _resolve(uint256 disputeId, Dispute storage d) private returns (DisputeVerdict verdict) {
        _pending(disputeId);
        address[] memory committee = d.committee;
        uint256 cast = d.votesCast;
        if (block.timestamp <= d.votingEndsAt && (committee.length == 0 || cast < committee.length)) {
            revert Settlement__VotingOpen(disputeId, d.votingEndsAt);
        }
        bytes32[] memory votes = new bytes32[](committee.length);
        for (uint256 i = 0; i < committee.length; ++i) votes[i] = _votes[disputeId][committee[i]];
        bytes32 majority = _majority(votes, cast);
        if (majority == bytes32(0)) verdict = DisputeVerdict.NoMajority;
        else if (majority == d.accusedHash) verdict = DisputeVerdict.AccusedRight;
        else verdict = DisputeVerdict.AccusedWrong;
        d.verdict = verdict;
        d.majorityHash = majority;

        DisputeParams memory p = _disputeParams;
        Payout memory pay;
        if (verdict == DisputeVerdict.AccusedWrong) {
            pay.slashed = _NODES.slash(d.accused, p.slashAmount, true);
            if (majority == d.claimedHash) pay.challenger = (pay.slashed * p.challengerRewardBps) / _BPS;
            pay.pot = pay.slashed - pay.challenger;
        }
        // The bond comes back unless the majority named a hash other than the claimed one.
        uint256 bond = d.bond;
        _bondsHeld -= bond;
        if (verdict == DisputeVerdict.NoMajority || majority == d.claimedHash) pay.challenger += bond;
        else pay.pot += bond;
        if (p.absentPenalty != 0) pay.pot += _penalizeAbsent(disputeId, committee, votes, p.absentPenalty);

        uint256 winners = 0;
        for (uint256 i = 0; i < votes.length; ++i)
            if (majority != bytes32(0) && votes[i] == majority) ++winners;
        if (winners != 0) {
            uint256 each = (pay.pot * p.voterRewardBps) / _BPS / winners;
            pay.voters = each * winners;
            for (uint256 i = 0; i < votes.length; ++i) if (votes[i] == majority) _credit(committee[i], each);
        }
        _credit(d.challenger, pay.challenger);
        uint256 treasuryPaid = pay.pot - pay.voters;
        _credit(_treasury, treasuryPaid);
        _totalCredits += pay.challenger + pay.pot;
        emit DisputeResolved(
            disputeId,
            verdict,
            majority,
            pay.slashed,
            pay.challenger,
            pay.voters,
            treasuryPaid
        );
    }

    function _penalizeAbsent(
        uint256 disputeId,
        address[] memory committee,
        bytes32[] memory votes,
        uint256 penalty
    ) private returns (uint256 taken) {
        for (uint256 i = 0; i < committee.length; ++i) {
            if (votes[i] != bytes32(0)) continue;
            uint256 amount = _NODES.slash(committee[i], penalty, false);
            taken += amount;
            emit VoterPenalized(disputeId, committee[i], amount);
        }
    }

    /// @dev The hash holding more than half of the votes cast, or zero.
    function _majority(bytes32[] memory votes, uint256 cast) private pure returns (bytes32) {
        for (uint256 i = 0; i < votes.length; ++i) {
            bytes32 v = votes[i];
            if (v == bytes32(0)) continue;
            uint256 count = 0;
            for (uint256 j = i; j < votes.length; ++j) if (votes[j] == v) ++count;
            if (count * 2 > cast) return v;
        }
        return bytes32(0);
    }

    function _draw(uint256 disputeId, Dispute storage d) private returns (address[] memory committee) {
        uint64 drawBlock = d.drawBlock;
        if (block.number <= drawBlock) revert Settlement__CommitteeNotDrawable(disputeId, drawBlock);
        if (block.timestamp > d.votingEndsAt) revert Settlement__VotingClosed(disputeId, d.votingEndsAt);
        bytes32 seedHash = blockhash(drawBlock);
        // Only the last 256 block hashes are readable; past that the latest one stands in.
        if (seedHash == bytes32(0)) seedHash = blockhash(block.number - 1);
        committee = _sample(uint256(keccak256(abi.encode(seedHash, disputeId))), d.accused);
        if (committee.length == 0) revert Settlement__NoEligibleVerifiers(disputeId);
        d.committee = committee;
        emit CommitteeDrawn(disputeId, committee);
    }

    /// @dev Up to `committeeSize` distinct active verifiers other than the accused: random probes
    /// first, then a sweep from a random start so a small set is always found whole.
    function _sample(uint256 seed, address accused) private view returns (address[] memory picked) {
        uint256 size = _disputeParams.committeeSize;
        uint256 n = _NODES.verifierCount();
        picked = new address[](size);
        if (n == 0) {
            assembly ("memory-safe") {
                mstore(picked, 0)
            }
            return picked;
        }
        uint256 count = 0;
        for (uint256 j = 0; j < size * 4 && count < size; ++j) {
            address c = _NODES.verifierAt(uint256(keccak256(abi.encode(seed, j))) % n);
            if (_eligible(c, accused, picked, count)) picked[count++] = c;
        }
        uint256 sweep = n < _MAX_SWEEP ? n : _MAX_SWEEP;
        for (uint256 i = 0; i < sweep && count < size; ++i) {
            address c = _NODES.verifierAt((seed + i) % n);
            if (_eligible(c, accused, picked, count)) picked[count++] = c;
        }
        assembly ("memory-safe") {
            mstore(picked, count)
        }
    }

    function _eligible(
        address candidate,
        address accused,
        address[] memory picked,
        uint256 count
    ) private view returns (bool) {
        return
            candidate != accused &&
            !_contains(picked, count, candidate) &&
            _NODES.isActive(candidate, Roles.VERIFIER);
    }

    function _contains(address[] memory list, uint256 count, address a) private pure returns (bool) {
        for (uint256 i = 0; i < count; ++i) if (list[i] == a) return true;
        return false;
    }

    function _pending(uint256 disputeId) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.source == address(0)) revert Settlement__UnknownDispute(disputeId);
        if (d.verdict != DisputeVerdict.Pending) revert Settlement__DisputeEnded(disputeId, d.verdict);
    }

    // --------------------------------------------------------------------------------- views

    /// @inheritdoc ISettlement
    function dispute(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    /// @inheritdoc ISettlement
    function disputeOf(uint256 requestId) external view returns (uint256) {
        return _requestDisputes[requestId];
    }

    /// @inheritdoc ISettlement
    function voteOf(uint256 disputeId, address voter) external view returns (bytes32) {
        return _votes[disputeId][voter];
    }

    /// @inheritdoc ISettlement
    function disputeCount() external view returns (uint256) {
        return _disputeCount;
    }

    /// @inheritdoc ISettlement
    function disputeParams() external view returns (DisputeParams memory) {
        return _disputeParams;
    }

    /// @inheritdoc ISettlement
    function challengeBond() external view returns (uint256) {
        return _disputeParams.challengeBond;
    }

    /// @inheritdoc ISettlement
    function isDisputeSource(address source) external view returns (bool) {
        return _disputeSources[source];
    }

    /// @inheritdoc ISettlement
    function bondsHeld() external view returns (uint256) {
        return _bondsHeld;
    }

    /// @inheritdoc ISettlement
    function credits(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @inheritdoc ISettlement
    function totalCredits() external view returns (uint256) {
        return _totalCredits;
    }

    /// @inheritdoc ISettlement
    function finalizableAt(Fulfillment calldata fulfillment) external view returns (uint64) {
        return fulfillment.fulfilledAt + _challengeWindow;
    }

    /// @inheritdoc ISettlement
    function params() external view returns (SettlementParams memory) {
        return
            SettlementParams({
                treasury: _treasury,
                challengeWindow: _challengeWindow,
                protocolFeeBps: _protocolFeeBps
            });
    }

    function _credit(address account, uint256 amount) private {
        if (amount != 0) _credits[account] += amount;
    }

    function _setDisputeParams(DisputeParams calldata p) private {
        if (
            p.challengeBond == 0 ||
            p.committeeSize == 0 ||
            p.committeeSize > MAX_COMMITTEE_SIZE ||
            p.challengerRewardBps > _BPS ||
            p.voterRewardBps > _BPS ||
            p.votingPeriod == 0 ||
            p.votingPeriod > MAX_VOTING_PERIOD
        ) {
            revert Settlement__InvalidParams();
        }
        _disputeParams = p;
        emit DisputeParamsChanged(p);
    }

    function _setParams(SettlementParams calldata p) private {
        if (
            p.treasury == address(0) ||
            p.protocolFeeBps > MAX_PROTOCOL_FEE_BPS ||
            p.challengeWindow > MAX_CHALLENGE_WINDOW
        ) {
            revert Settlement__InvalidParams();
        }
        _treasury = p.treasury;
        _challengeWindow = p.challengeWindow;
        _protocolFeeBps = p.protocolFeeBps;
        emit SettlementParamsChanged(p);
    }
}
