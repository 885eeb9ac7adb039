// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title What every gradnet system contract shares: one-time initialisation by its deployer.
/// @notice On the devnet the runtime code is placed at a fixed address and initialised there;
/// on other chains the deployed contract is initialised in place. Either way only the account
/// that deployed the code may initialise it, once.
interface ISystemContract {
    error System__NotDeployer(address caller);
    error System__ZeroAddress();

    function deployer() external view returns (address);
}
