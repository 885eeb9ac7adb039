// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title What the hub calls on a contract that asked for an inference.
interface IInferenceConsumer {
    error Consumer__OnlyHub(address caller);

    /// @notice Called by the hub alone, with exactly the gas the request asked for.
    /// @param status a ResultStatus: 0 success (output is abi.encode(Tensor[])), else an error
    function rawFulfillInference(
        uint256 requestId,
        uint8 status,
        bytes calldata output,
        bytes32 outputHash
    ) external;

    /// @notice Called by the hub alone when a dispute found an answer this contract received
    /// wrong; the fee has been refunded. Same gas limit as the original callback. A contract
    /// that does not implement it just sees the call fail (recorded, harmless).
    function rawInferenceOverturned(
        uint256 requestId,
        bytes32 outputHash,
        bytes32 correctOutputHash
    ) external;
}
