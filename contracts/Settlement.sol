// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SystemContract} from "./base/SystemContract.sol";
import {ISettlement, SettlementParams} from "./interfaces/ISettlement.sol";
import {IInferenceHub, Request, Fulfillment} from "./interfaces/IInferenceHub.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";

/// @title Settlement
/// @notice A fulfilled request's fee stays escrowed in the hub through the challenge window.
/// Finalising moves it here and splits it into credits for the node, the model's owner and the
/// protocol treasury; refunds are credited to requesters. Owners withdraw their credit.
/// Invariant: this contract's balance equals `totalCredits()`.
contract Settlement is ISettlement, SystemContract {
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 2_000;
    uint64 public constant MAX_CHALLENGE_WINDOW = 30 days;
    uint256 private constant _BPS = 10_000;

    IInferenceHub private immutable _HUB;
    IModelRegistry private immutable _MODELS;
    address private immutable _NODES;

    address private _treasury;
    uint64 private _challengeWindow;
    uint16 private _protocolFeeBps;

    uint256 private _totalCredits;
    mapping(address account => uint256) private _credits;

    constructor(IInferenceHub hub_, IModelRegistry models_, address nodes_) {
        if (address(hub_) == address(0) || address(models_) == address(0) || nodes_ == address(0)) {
            revert System__ZeroAddress();
        }
        _HUB = hub_;
        _MODELS = models_;
        _NODES = nodes_;
    }

    function initialize(address owner_, SettlementParams calldata params_) external initializer onlyDeployer {
        __SystemContract_init(owner_);
        _setParams(params_);
    }

    /// @notice Governance: change the treasury, the challenge window and the protocol's share.
    function setParams(SettlementParams calldata params_) external onlyOwner {
        _setParams(params_);
    }

    /// @notice Only the hub (released fees) and the node registry (slashed stake) pay in. A
    /// released fee is credited by `finalize` in the same transaction. Slashed stake arrives only
    /// when this contract calls `NodeRegistry.slash`, which nothing here does until disputes
    /// (a later part of the protocol) credit it to the challenger and treasury.
    receive() external payable {
        if (msg.sender != address(_HUB) && msg.sender != _NODES)
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
        uint64 at = fulfillment.fulfilledAt + window;
        if (block.timestamp < at) revert Settlement__ChallengeWindowOpen(request.requestId, at);
        // The hub checks `fulfillment` against its commitment and moves the fee here.
        fee = _HUB.release(request, fulfillment);
        (address modelOwner, uint16 ownerShareBps) = _MODELS.payoutOf(request.modelId);
        uint256 ownerAmount = (fee * ownerShareBps) / _BPS;
        uint256 protocolAmount = (fee * protocolFeeBps) / _BPS;
        uint256 nodeAmount = fee - ownerAmount - protocolAmount;
        _credit(fulfillment.node, nodeAmount);
        _credit(modelOwner, ownerAmount);
        _credit(treasury, protocolAmount);
        _totalCredits += fee;
        emit Settled(
            request.requestId,
            fulfillment.node,
            modelOwner,
            nodeAmount,
            ownerAmount,
            protocolAmount
        );
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
