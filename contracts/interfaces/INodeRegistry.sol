// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Roles are bits; a node may hold several.
library Roles {
    uint8 internal constant INFERENCE = 1;
    uint8 internal constant VERIFIER = 2;
    uint8 internal constant DATA = 4;
    uint8 internal constant ALL = INFERENCE | VERIFIER | DATA;
}

/// @notice One node's stake and standing; two storage slots (field order is the packing).
struct NodeInfo {
    uint128 stake;
    uint8 roles;
    uint64 jailedUntil;
    uint128 unbonding;
    uint64 unbondingReleaseAt;
    uint64 registeredAt;
}

/// @notice Minimum bonded stake for each role, and the delays that protect slashing.
struct StakeParams {
    uint96 minStakeInference;
    uint96 minStakeVerifier;
    uint96 minStakeData;
    uint64 unbondingDelay;
    uint64 jailPeriod;
}

/// @title Staked nodes and their roles. Only the settlement contract slashes.
interface INodeRegistry {
    event NodeRegistered(address indexed node, uint8 roles, uint256 stake);
    event RolesChanged(address indexed node, uint8 oldRoles, uint8 newRoles);
    event StakeAdded(address indexed node, uint256 amount, uint256 stake);
    event UnbondingStarted(address indexed node, uint256 amount, uint256 unbonding, uint64 releaseAt);
    event StakeWithdrawn(address indexed node, uint256 amount);
    event NodeSlashed(address indexed node, uint256 requested, uint256 slashed, uint64 jailedUntil);
    event StakeParamsChanged(StakeParams params);

    error NodeRegistry__AlreadyRegistered(address node);
    error NodeRegistry__NotRegistered(address node);
    error NodeRegistry__InvalidRoles(uint8 roles);
    error NodeRegistry__StakeBelowMinimum(uint8 role, uint256 stake, uint256 minStake);
    error NodeRegistry__ZeroAmount();
    error NodeRegistry__InsufficientStake(uint256 requested, uint256 stake);
    error NodeRegistry__NothingUnbonding(address node);
    error NodeRegistry__StillUnbonding(address node, uint64 releaseAt);
    error NodeRegistry__OnlySettlement(address caller);
    error NodeRegistry__TransferFailed(address to, uint256 amount);
    error NodeRegistry__AmountTooLarge(uint256 amount);

    /// @notice Stake `msg.value` and take `roles`; the stake must meet each role's minimum.
    function register(uint8 roles) external payable;
    function addStake() external payable;
    function setRoles(uint8 roles) external;
    /// @notice Move `amount` of bonded stake into unbonding; it stays slashable until released.
    function startUnbonding(uint256 amount) external;
    /// @notice Withdraw everything whose unbonding delay has passed.
    function withdraw() external;
    /// @notice Take up to `amount` of the node's stake (bonded first, then unbonding) and, when
    /// `jail`, jail it. The slashed value is sent to the settlement contract.
    function slash(address node, uint256 amount, bool jail) external returns (uint256 slashed);

    function isActive(address node, uint8 role) external view returns (bool);
    function nodeInfo(address node) external view returns (NodeInfo memory);
    function stakeOf(address node) external view returns (uint256);
    function rolesOf(address node) external view returns (uint8);
    function minStake(uint8 role) external view returns (uint256);
    function stakeParams() external view returns (StakeParams memory);
    function settlement() external view returns (address);
    /// @notice Nodes holding the VERIFIER role (active or not); dispute committees are drawn here.
    function verifierCount() external view returns (uint256);
    function verifierAt(uint256 index) external view returns (address);
}
