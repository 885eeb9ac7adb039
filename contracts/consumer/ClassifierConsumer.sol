// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {InferenceConsumer} from "./InferenceConsumer.sol";
import {IInferenceHub, ResultStatus} from "../interfaces/IInferenceHub.sol";
import {ISettlement} from "../interfaces/ISettlement.sol";
import {Tensor, DType} from "../interfaces/ITensor.sol";

/// @title ClassifierConsumer, an example dApp
/// @notice Sends a feature vector to a classifier model (one float input `input` of shape
/// [1, n]) and stores the winning class of the output tensor named `scoresName` (scores of
/// shape [1, classes]; outputs arrive sorted by name, so it is found by name, not position).
contract ClassifierConsumer is InferenceConsumer {
    struct Classification {
        ResultStatus status;
        bool answered;
        uint8 label;
        int256 score; // the winning score, fixed-point with the model's decimals
        bytes32 outputHash;
        bool overturned; // a dispute found the answer wrong
    }

    error Classifier__NoScores(uint256 requestId);
    error Classifier__UnknownRequest(uint256 requestId);
    error Classifier__OnlyOwner(address caller);

    event ClassificationRequested(uint256 indexed requestId, address indexed sender);
    event Classified(uint256 indexed requestId, ResultStatus status, uint8 label, int256 score);
    /// @notice A dispute found the answer to `requestId` wrong: its classification is withdrawn
    /// and the fee is back in this contract's refund credit.
    event ClassificationOverturned(uint256 indexed requestId, bytes32 outputHash, bytes32 correctOutputHash);

    bytes32 public immutable MODEL_ID;
    bytes32 public immutable SCORES_NAME_HASH;
    address public immutable OWNER;
    uint32 public constant CALLBACK_GAS_LIMIT = 200_000;

    mapping(uint256 requestId => Classification) public classifications;
    mapping(uint256 requestId => address) public requesterOf;
    uint256 public lastRequestId;

    constructor(IInferenceHub hub, bytes32 modelId, string memory scoresName) InferenceConsumer(hub) {
        MODEL_ID = modelId;
        SCORES_NAME_HASH = keccak256(bytes(scoresName));
        OWNER = msg.sender;
    }

    /// @notice Fees of failed or expired requests are credited to this contract by the
    /// settlement contract; its deployer collects them.
    function withdrawRefunds(ISettlement settlement) external returns (uint256) {
        if (msg.sender != OWNER) revert Classifier__OnlyOwner(msg.sender);
        return settlement.withdraw(payable(OWNER));
    }

    /// @notice Classify `features` (fixed-point with `decimals`); `msg.value` pays the fee.
    function classify(
        int256[] calldata features,
        uint8 decimals
    ) external payable returns (uint256 requestId) {
        Tensor[] memory inputs = new Tensor[](1);
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        shape[1] = uint32(features.length);
        inputs[0] = Tensor({
            name: "input",
            dtype: DType.FLOAT,
            decimals: decimals,
            shape: shape,
            values: features,
            strings: new string[](0)
        });
        requestId = _requestInference(MODEL_ID, inputs, CALLBACK_GAS_LIMIT, msg.value);
        requesterOf[requestId] = msg.sender;
        lastRequestId = requestId;
        emit ClassificationRequested(requestId, msg.sender);
    }

    function _onInference(
        uint256 requestId,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash
    ) internal override {
        if (requesterOf[requestId] == address(0)) revert Classifier__UnknownRequest(requestId);
        Classification storage c = classifications[requestId];
        c.status = status;
        c.answered = true;
        c.outputHash = outputHash;
        if (status != ResultStatus.Success) {
            emit Classified(requestId, status, 0, 0);
            return;
        }
        Tensor[] memory outputs = _decodeTensors(output);
        int256[] memory scores;
        for (uint256 i = 0; i < outputs.length; ++i) {
            if (keccak256(bytes(outputs[i].name)) == SCORES_NAME_HASH) scores = outputs[i].values;
        }
        if (scores.length == 0) revert Classifier__NoScores(requestId);
        uint256 best = 0;
        for (uint256 i = 1; i < scores.length; ++i) {
            if (scores[i] > scores[best]) best = i;
        }
        c.label = uint8(best);
        c.score = scores[best];
        emit Classified(requestId, status, uint8(best), scores[best]);
    }

    /// @dev A dispute overturned the answer: withdraw the classification, keep the record.
    function _onInferenceOverturned(
        uint256 requestId,
        bytes32 outputHash,
        bytes32 correctOutputHash
    ) internal override {
        Classification storage c = classifications[requestId];
        c.overturned = true;
        c.label = 0;
        c.score = 0;
        emit ClassificationOverturned(requestId, outputHash, correctOutputHash);
    }
}
