// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {Ownable2StepUpgradeable} from "@openzeppelin/contracts-upgradeable/access/Ownable2StepUpgradeable.sol";
import {ISystemContract} from "../interfaces/ISystemContract.sol";

/// @dev Base of the system contracts. Wiring between them is immutable (constructor
/// arguments, baked into the runtime code); parameters and ownership live in storage and are
/// set by `initialize`, so the same runtime code works when copied to a fixed address.
/// OpenZeppelin's upgradeable bases keep their state in namespaced slots (ERC-7201), so a
/// contract's own variables start at slot 0.
abstract contract SystemContract is ISystemContract, Initializable, Ownable2StepUpgradeable {
    address private immutable _DEPLOYER;

    constructor() {
        _DEPLOYER = msg.sender;
    }

    modifier onlyDeployer() {
        if (msg.sender != _DEPLOYER) revert System__NotDeployer(msg.sender);
        _;
    }

    function deployer() external view returns (address) {
        return _DEPLOYER;
    }

    function __SystemContract_init(address owner_) internal onlyInitializing {
        if (owner_ == address(0)) revert System__ZeroAddress();
        __Ownable_init(owner_);
    }
}
