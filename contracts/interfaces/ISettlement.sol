// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Request, Fulfillment} from "./IInferenceHub.sol";

struct SettlementParams {
    address treasury;
    uint64 challengeWindow; // seconds a result is held before it can be finalised
    uint16 protocolFeeBps; // the treasury's share of each fee
}

/// @title Settlement: holds results through the challenge window, splits fees, keeps credits.
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

    error Settlement__ChallengeWindowOpen(uint256 requestId, uint64 finalizableAt);
    error Settlement__NothingToWithdraw(address account);
    error Settlement__TransferFailed(address to, uint256 amount);
    error Settlement__OnlyHub(address caller);
    error Settlement__UnexpectedPayment(address from);
    error Settlement__InvalidParams();

    /// @notice Pay out a result whose challenge window has passed. Anyone may call.
    function finalize(Request calldata request, Fulfillment calldata fulfillment) external;

    /// @notice Finalise many results; returns the total fees settled.
    function finalizeBatch(
        Request[] calldata requests,
        Fulfillment[] calldata fulfillments
    ) external returns (uint256 settled);

    /// @notice Hub hook: credit a refunded fee to its requester.
    function creditRefund(uint256 requestId, address requester) external payable;

    /// @notice Withdraw the caller's whole credit to `to`.
    function withdraw(address payable to) external returns (uint256 amount);

    function credits(address account) external view returns (uint256);
    function totalCredits() external view returns (uint256);
    function finalizableAt(Fulfillment calldata fulfillment) external view returns (uint64);
    function params() external view returns (SettlementParams memory);
}
