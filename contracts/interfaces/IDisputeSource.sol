// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DisputeVerdict} from "./ISettlement.sol";

/// @title A contract whose results can be disputed through Settlement (e.g. batch settlement).
interface IDisputeSource {
    /// @notice Settlement calls this once, when the dispute about `subjectId` ends. Stakes,
    /// bonds and rewards are already settled; the source settles its own fees.
    function onDisputeResolved(uint256 disputeId, uint256 subjectId, DisputeVerdict verdict) external;
}
