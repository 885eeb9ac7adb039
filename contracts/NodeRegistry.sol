// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SystemContract} from "./base/SystemContract.sol";
import {INodeRegistry, NodeInfo, StakeParams, Roles} from "./interfaces/INodeRegistry.sol";

/// @title NodeRegistry
/// @notice Nodes bond native-token stake and take roles. Stake leaves only through unbonding,
/// and stays slashable while it unbonds. Only the settlement contract slashes.
contract NodeRegistry is INodeRegistry, SystemContract {
    using EnumerableSet for EnumerableSet.AddressSet;

    address private immutable _SETTLEMENT;

    mapping(address node => NodeInfo) private _nodes;

    // Packed so that `isActive(node, INFERENCE)` (read on every fulfilment) is two SLOADs.
    uint96 private _minStakeInference;
    uint96 private _minStakeVerifier;
    uint64 private _unbondingDelay;
    uint96 private _minStakeData;
    uint64 private _jailPeriod;

    EnumerableSet.AddressSet private _verifiers;

    constructor(address settlement_) {
        if (settlement_ == address(0)) revert System__ZeroAddress();
        _SETTLEMENT = settlement_;
    }

    function initialize(address owner_, StakeParams calldata params_) external initializer onlyDeployer {
        __SystemContract_init(owner_);
        _setParams(params_);
    }

    /// @notice Governance: change minimum stakes, the unbonding delay and the jail period.
    function setStakeParams(StakeParams calldata params_) external onlyOwner {
        _setParams(params_);
    }

    /// @inheritdoc INodeRegistry
    function register(uint8 roles) external payable {
        NodeInfo storage n = _nodes[msg.sender];
        if (n.registeredAt != 0) revert NodeRegistry__AlreadyRegistered(msg.sender);
        if (roles == 0 || roles & ~Roles.ALL != 0) revert NodeRegistry__InvalidRoles(roles);
        uint128 stake = _toUint128(msg.value);
        _checkMinimums(roles, stake);
        n.stake = stake;
        n.roles = roles;
        n.registeredAt = uint64(block.timestamp);
        if (roles & Roles.VERIFIER != 0) _verifiers.add(msg.sender);
        emit NodeRegistered(msg.sender, roles, stake);
    }

    /// @inheritdoc INodeRegistry
    function addStake() external payable {
        NodeInfo storage n = _registered(msg.sender);
        if (msg.value == 0) revert NodeRegistry__ZeroAmount();
        uint128 stake = n.stake + _toUint128(msg.value);
        n.stake = stake;
        emit StakeAdded(msg.sender, msg.value, stake);
    }

    /// @inheritdoc INodeRegistry
    /// @dev Roles may be set to 0 to stop taking work while the stake unbonds.
    function setRoles(uint8 roles) external {
        NodeInfo storage n = _registered(msg.sender);
        if (roles & ~Roles.ALL != 0) revert NodeRegistry__InvalidRoles(roles);
        _checkMinimums(roles, n.stake);
        uint8 old = n.roles;
        n.roles = roles;
        if (roles & Roles.VERIFIER != 0) _verifiers.add(msg.sender);
        else _verifiers.remove(msg.sender);
        emit RolesChanged(msg.sender, old, roles);
    }

    /// @inheritdoc INodeRegistry
    /// @dev A second call adds to the amount unbonding and restarts the delay for all of it.
    function startUnbonding(uint256 amount) external {
        NodeInfo storage n = _registered(msg.sender);
        if (amount == 0) revert NodeRegistry__ZeroAmount();
        if (amount > n.stake) revert NodeRegistry__InsufficientStake(amount, n.stake);
        uint128 a = uint128(amount);
        n.stake -= a;
        n.unbonding += a;
        uint64 releaseAt = uint64(block.timestamp) + _unbondingDelay;
        n.unbondingReleaseAt = releaseAt;
        emit UnbondingStarted(msg.sender, amount, n.unbonding, releaseAt);
    }

    /// @inheritdoc INodeRegistry
    function withdraw() external {
        NodeInfo storage n = _registered(msg.sender);
        uint256 amount = n.unbonding;
        if (amount == 0) revert NodeRegistry__NothingUnbonding(msg.sender);
        if (block.timestamp < n.unbondingReleaseAt) {
            revert NodeRegistry__StillUnbonding(msg.sender, n.unbondingReleaseAt);
        }
        n.unbonding = 0;
        n.unbondingReleaseAt = 0;
        emit StakeWithdrawn(msg.sender, amount);
        (bool ok, ) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert NodeRegistry__TransferFailed(msg.sender, amount);
    }

    /// @inheritdoc INodeRegistry
    function slash(address node, uint256 amount, bool jail) external returns (uint256 slashed) {
        if (msg.sender != _SETTLEMENT) revert NodeRegistry__OnlySettlement(msg.sender);
        NodeInfo storage n = _registered(node);
        uint128 bonded = n.stake;
        uint128 unbonding = n.unbonding;
        uint256 available = uint256(bonded) + unbonding;
        slashed = amount < available ? amount : available;
        // Bonded stake first, then what is unbonding: leaving cannot outrun a slash.
        uint128 fromBonded = slashed <= bonded ? uint128(slashed) : bonded;
        n.stake = bonded - fromBonded;
        n.unbonding = unbonding - uint128(slashed - fromBonded);
        if (jail) {
            uint64 jailedUntil = uint64(block.timestamp) + _jailPeriod;
            if (jailedUntil > n.jailedUntil) n.jailedUntil = jailedUntil;
        }
        emit NodeSlashed(node, amount, slashed, n.jailedUntil);
        if (slashed > 0) {
            (bool ok, ) = payable(_SETTLEMENT).call{value: slashed}("");
            if (!ok) revert NodeRegistry__TransferFailed(_SETTLEMENT, slashed);
        }
    }

    /// @inheritdoc INodeRegistry
    /// @dev `role` must be one role bit; anything else reverts NodeRegistry__InvalidRoles.
    function isActive(address node, uint8 role) external view returns (bool) {
        uint256 min = _minStakeFor(role);
        NodeInfo storage n = _nodes[node];
        return n.roles & role != 0 && n.jailedUntil <= block.timestamp && n.stake >= min;
    }

    /// @inheritdoc INodeRegistry
    function nodeInfo(address node) external view returns (NodeInfo memory) {
        return _nodes[node];
    }

    /// @inheritdoc INodeRegistry
    function stakeOf(address node) external view returns (uint256) {
        return _nodes[node].stake;
    }

    /// @inheritdoc INodeRegistry
    function rolesOf(address node) external view returns (uint8) {
        return _nodes[node].roles;
    }

    /// @inheritdoc INodeRegistry
    function minStake(uint8 role) external view returns (uint256) {
        return _minStakeFor(role);
    }

    /// @inheritdoc INodeRegistry
    function stakeParams() public view returns (StakeParams memory) {
        return
            StakeParams({
                minStakeInference: _minStakeInference,
                minStakeVerifier: _minStakeVerifier,
                minStakeData: _minStakeData,
                unbondingDelay: _unbondingDelay,
                jailPeriod: _jailPeriod
            });
    }

    /// @inheritdoc INodeRegistry
    function settlement() external view returns (address) {
        return _SETTLEMENT;
    }

    /// @inheritdoc INodeRegistry
    function verifierCount() external view returns (uint256) {
        return _verifiers.length();
    }

    /// @inheritdoc INodeRegistry
    function verifierAt(uint256 index) external view returns (address) {
        return _verifiers.at(index);
    }

    function _minStakeFor(uint8 role) private view returns (uint256) {
        if (role == Roles.INFERENCE) return _minStakeInference;
        if (role == Roles.VERIFIER) return _minStakeVerifier;
        if (role == Roles.DATA) return _minStakeData;
        revert NodeRegistry__InvalidRoles(role);
    }

    function _checkMinimums(uint8 roles, uint256 stake) private view {
        for (uint8 role = 1; role <= Roles.DATA; role <<= 1) {
            if (roles & role == 0) continue;
            uint256 min = _minStakeFor(role);
            if (stake < min) revert NodeRegistry__StakeBelowMinimum(role, stake, min);
        }
    }

    function _registered(address node) private view returns (NodeInfo storage n) {
        n = _nodes[node];
        if (n.registeredAt == 0) revert NodeRegistry__NotRegistered(node);
    }

    function _setParams(StakeParams calldata p) private {
        _minStakeInference = p.minStakeInference;
        _minStakeVerifier = p.minStakeVerifier;
        _minStakeData = p.minStakeData;
        _unbondingDelay = p.unbondingDelay;
        _jailPeriod = p.jailPeriod;
        emit StakeParamsChanged(p);
    }

    function _toUint128(uint256 value) private pure returns (uint128) {
        if (value > type(uint128).max) revert NodeRegistry__AmountTooLarge(value);
        return uint128(value);
    }
}
