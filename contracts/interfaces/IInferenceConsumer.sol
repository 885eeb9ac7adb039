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
}
