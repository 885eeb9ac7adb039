// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Request, Fulfillment} from "./IInferenceHub.sol";

struct SettlementParams {
    address treasury;
    uint64 challengeWindow; // seconds a result is held before it can be finalised
    uint16 protocolFeeBps; // the treasury's share of each fee
}

/// @notice How a dispute ended.
enum DisputeVerdict {
    Pending, // open: the committee is drawn and voting
    AccusedRight, // the committee's majority agreed with the accused node: the challenger loses its bond
    AccusedWrong, // the majority named another hash: the accused node is slashed, the fee refunded
    NoMajority // no hash won more than half the votes cast: nobody is slashed, the result stands
}

/// @notice The terms of disputes. Amounts in wei; shares in basis points.
struct DisputeParams {
    uint96 challengeBond; // what a challenger posts; returned unless the majority rejects its claim
    uint96 slashAmount; // stake taken from a node the majority finds wrong (capped at its stake)
    uint96 absentPenalty; // stake taken, without jailing, from a committee member that did not vote
    uint16 challengerRewardBps; // share of the slashed stake paid to a challenger the majority agreed with
    uint16 voterRewardBps; // share of the rest (forfeits and penalties) split among majority voters
    uint8 committeeSize; // verifiers drawn per dispute (1..MAX_COMMITTEE_SIZE)
    uint32 votingPeriod; // seconds from the challenge to the end of voting
}

/// @notice One dispute. `source` is the hub for challenged results, or a registered dispute
/// source (e.g. batch settlement) whose `subjectId` means what that source says.
struct Dispute {
    address source;
    uint64 openedAt;
    uint64 drawBlock; // the committee's seed is this block's hash
    address challenger;
    uint64 votingEndsAt;
    address accused;
    uint96 bond;
    uint256 subjectId;
    bytes32 accusedHash;
    bytes32 claimedHash;
    bytes32 majorityHash; // set when resolved with a majority
    DisputeVerdict verdict;
    uint8 votesCast;
    address[] committee; // empty until drawn
}

/// @title Settlement: holds results through the challenge window, splits fees, keeps credits,
/// and runs disputes: a challenger bonds a claim, a committee of verifiers votes, the loser pays.
/// @notice Every payout is a credit that its owner withdraws (pull payments).
interface ISettlement {
    event Settled(
        uint256 indexed requestId,
        address indexed node,
        address indexed modelOwner,
        uint256 nodeAmount,
        uint256 ownerAmount,
        uint256 protocolAmount
    );
    event RefundCredited(uint256 indexed requestId, address indexed requester, uint256 amount);
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    event SettlementParamsChanged(SettlementParams params);
    event DisputeParamsChanged(DisputeParams params);
    event DisputeSourceChanged(address indexed source, bool allowed);
    event DisputeOpened(
        uint256 indexed disputeId,
        address indexed source,
        uint256 indexed subjectId,
        address challenger,
        address accused,
        bytes32 accusedHash,
        bytes32 claimedHash,
        uint64 drawBlock,
        uint64 votingEndsAt
    );
    event CommitteeDrawn(uint256 indexed disputeId, address[] committee);
    event VoteCast(uint256 indexed disputeId, address indexed voter, bytes32 outputHash);
    event DisputeResolved(
        uint256 indexed disputeId,
        DisputeVerdict verdict,
        bytes32 majorityHash,
        uint256 slashed,
        uint256 challengerPaid,
        uint256 votersPaid,
        uint256 treasuryPaid
    );
    /// @notice A redundant request's fee was split among the nodes that agreed.
    event SettledRedundant(
        uint256 indexed requestId,
        address[] nodes,
        uint256 eachNodeAmount,
        uint256 ownerAmount,
        uint256 protocolAmount
    );
    /// @notice A node whose answer to a redundant request differed from the agreed one was slashed.
    event DissenterSlashed(uint256 indexed requestId, address indexed node, uint256 slashed);
    /// @notice A committee member that did not vote lost `amount` of stake.
    event VoterPenalized(uint256 indexed disputeId, address indexed voter, uint256 amount);

    error Settlement__ChallengeWindowOpen(uint256 requestId, uint64 finalizableAt);
    error Settlement__NothingToWithdraw(address account);
    error Settlement__TransferFailed(address to, uint256 amount);
    error Settlement__OnlyHub(address caller);
    error Settlement__UnexpectedPayment(address from);
    error Settlement__InvalidParams();
    error Settlement__WrongBond(uint256 paid, uint256 required);
    error Settlement__NotVerifier(address caller);
    error Settlement__SameHash(bytes32 outputHash);
    error Settlement__ZeroHash();
    error Settlement__ChallengeWindowClosed(uint256 requestId, uint64 closedAt);
    error Settlement__AlreadyChallenged(uint256 requestId, uint256 disputeId);
    error Settlement__NotDisputeSource(address caller);
    error Settlement__UnknownDispute(uint256 disputeId);
    error Settlement__DisputeEnded(uint256 disputeId, DisputeVerdict verdict);
    error Settlement__CommitteeNotDrawable(uint256 disputeId, uint64 drawBlock);
    error Settlement__CommitteeAlreadyDrawn(uint256 disputeId);
    error Settlement__CommitteeNotDrawn(uint256 disputeId);
    error Settlement__NotCommitteeMember(uint256 disputeId, address caller);
    error Settlement__AlreadyVoted(uint256 disputeId, address voter);
    error Settlement__VotingClosed(uint256 disputeId, uint64 votingEndsAt);
    error Settlement__VotingOpen(uint256 disputeId, uint64 votingEndsAt);
    error Settlement__WrongSubject(uint256 disputeId);
    error Settlement__NotChallenged(uint256 requestId);
    error Settlement__NoEligibleVerifiers(uint256 disputeId);
    error Settlement__RedundantRequest(uint256 requestId);
    error Settlement__NotRedundant(uint256 requestId);
    error Settlement__NotAgreeingNodes(uint256 requestId);
    error Settlement__NoAgreement(uint256 requestId);
    error Settlement__NotDissenter(uint256 requestId, address node);

    /// @notice Pay out a result whose challenge window has passed. Anyone may call.
    function finalize(Request calldata request, Fulfillment calldata fulfillment) external;

    /// @notice Finalise many results; returns the total fees settled.
    function finalizeBatch(
        Request[] calldata requests,
        Fulfillment[] calldata fulfillments
    ) external returns (uint256 settled);

    /// @notice Pay out a redundant request whose challenge window has passed: the node share is
    /// split equally among `nodes`, which must be exactly the nodes whose answer was the agreed one.
    function finalizeRedundant(
        Request calldata request,
        Fulfillment calldata fulfillment,
        address[] calldata nodes
    ) external;

    /// @notice Slash a node whose answer to a redundant request differed from the agreed answer.
    /// Anyone may call, once per node and request; the stake goes to the treasury.
    function slashDissenter(uint256 requestId, address node) external returns (uint256 slashed);

    /// @notice Hub hook: credit a refunded fee to its requester.
    function creditRefund(uint256 requestId, address requester) external payable;

    /// @notice Withdraw the caller's whole credit to `to`.
    function withdraw(address payable to) external returns (uint256 amount);

    /// @notice Challenge a fulfilled result inside its window, claiming the correct output hash.
    /// Only an active VERIFIER node; `msg.value` must equal the challenge bond.
    function challenge(
        Request calldata request,
        Fulfillment calldata fulfillment,
        bytes32 claimedOutputHash
    ) external payable returns (uint256 disputeId);

    /// @notice A registered dispute source (e.g. batch settlement) opens a dispute about one of
    /// its subjects on behalf of `challenger`, forwarding the bond.
    function openDispute(
        uint256 subjectId,
        address accused,
        bytes32 accusedHash,
        bytes32 claimedHash,
        address challenger
    ) external payable returns (uint256 disputeId);

    /// @notice Draw the committee from the active verifiers, seeded by the hash of the block
    /// after the challenge. Anyone may call once that block exists; `vote` draws it if needed.
    function drawCommittee(uint256 disputeId) external returns (address[] memory committee);

    /// @notice A committee member's answer: the output hash it computed.
    function vote(uint256 disputeId, bytes32 outputHash) external;

    /// @notice End a dispute about a hub result once everyone voted or voting closed. On
    /// `AccusedWrong` the hub refunds the requester and tells its consumer.
    function resolveChallenge(
        Request calldata request,
        Fulfillment calldata fulfillment
    ) external returns (DisputeVerdict verdict);

    /// @notice End a dispute opened by a dispute source; the source is told the verdict.
    function resolveDispute(uint256 disputeId) external returns (DisputeVerdict verdict);

    /// @notice Governance: allow or stop a contract opening disputes.
    function setDisputeSource(address source, bool allowed) external;

    /// @notice Governance: change the terms of disputes.
    function setDisputeParams(DisputeParams calldata params_) external;

    function dispute(uint256 disputeId) external view returns (Dispute memory);
    function disputeOf(uint256 requestId) external view returns (uint256 disputeId);
    function voteOf(uint256 disputeId, address voter) external view returns (bytes32);
    function disputeCount() external view returns (uint256);
    function disputeParams() external view returns (DisputeParams memory);
    function challengeBond() external view returns (uint256);
    function isDisputeSource(address source) external view returns (bool);
    /// @notice Bonds of open disputes. Invariant: balance == totalCredits() + bondsHeld().
    function bondsHeld() external view returns (uint256);

    function credits(address account) external view returns (uint256);
    function totalCredits() external view returns (uint256);
    function finalizableAt(Fulfillment calldata fulfillment) external view returns (uint64);
    function params() external view returns (SettlementParams memory);
}
