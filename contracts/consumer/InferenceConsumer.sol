// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {IInferenceHub, ResultStatus} from "../interfaces/IInferenceHub.sol";
import {Tensor} from "../interfaces/ITensor.sol";

/// @title InferenceConsumer
/// @notice Base for contracts that ask gradnet's models. Inherit it, call `_requestInference`,
/// and override `_onInference`; the hub alone can deliver answers.
abstract contract InferenceConsumer is IInferenceConsumer {
    IInferenceHub internal immutable INFERENCE_HUB;

    constructor(IInferenceHub hub) {
        INFERENCE_HUB = hub;
    }

    /// @inheritdoc IInferenceConsumer
    function rawFulfillInference(
        uint256 requestId,
        uint8 status,
        bytes calldata output,
        bytes32 outputHash
    ) external {
        if (msg.sender != address(INFERENCE_HUB)) revert Consumer__OnlyHub(msg.sender);
        _onInference(requestId, ResultStatus(status), output, outputHash);
    }

    /// @inheritdoc IInferenceConsumer
    function rawInferenceOverturned(
        uint256 requestId,
        bytes32 outputHash,
        bytes32 correctOutputHash
    ) external {
        if (msg.sender != address(INFERENCE_HUB)) revert Consumer__OnlyHub(msg.sender);
        _onInferenceOverturned(requestId, outputHash, correctOutputHash);
    }

    /// @notice A dispute found the answer delivered for `requestId` (hash `outputHash`) wrong;
    /// the committee's hash is `correctOutputHash` and the fee is back in this contract's
    /// refund credit. Override to undo what the answer did; the default does nothing.
    function _onInferenceOverturned(
        uint256 requestId,
        bytes32 outputHash,
        bytes32 correctOutputHash
    ) internal virtual {}

    /// @notice The answer to `requestId`. On `ResultStatus.Success`, `output` is
    /// `abi.encode(Tensor[])` (decode it with `_decodeTensors`); otherwise it is the worker's
    /// reason, the fee has already been refunded, and `outputHash` is keccak256(output).
    function _onInference(
        uint256 requestId,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash
    ) internal virtual;

    /// @notice Ask `modelId` about `inputs`, paying `fee` from this contract's balance.
    function _requestInference(
        bytes32 modelId,
        Tensor[] memory inputs,
        uint32 callbackGasLimit,
        uint256 fee
    ) internal returns (uint256 requestId) {
        return INFERENCE_HUB.requestInference{value: fee}(modelId, abi.encode(inputs), callbackGasLimit);
    }

    function _decodeTensors(bytes calldata output) internal pure returns (Tensor[] memory) {
        return abi.decode(output, (Tensor[]));
    }
}
