// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SystemContract} from "./base/SystemContract.sol";
import {
    IInferenceHub,
    Request,
    Fulfillment,
    FulfillParams,
    HubParams,
    Agreement,
    RequestState,
    ResultStatus,
    CallbackResult
} from "./interfaces/IInferenceHub.sol";
import {IInferenceConsumer} from "./interfaces/IInferenceConsumer.sol";
import {IModelRegistry, ModelTerms} from "./interfaces/IModelRegistry.sol";
import {INodeRegistry, Roles} from "./interfaces/INodeRegistry.sol";
import {ISettlement} from "./interfaces/ISettlement.sol";

/// @title InferenceHub, the request registry
/// @notice Escrows fees and keeps one storage slot per request. The slot's top byte is the
/// request's state; the other 31 bytes are a commitment: the hash of the `Request` while it is
/// pending, and the hash of the request together with its `Fulfillment` once answered.
/// Whoever acts on a request passes its parameters back and the hub checks them against it.
contract InferenceHub is IInferenceHub, SystemContract {
    uint256 private constant _STATE_SHIFT = 248;
    uint256 private constant _HASH_MASK = (uint256(1) << _STATE_SHIFT) - 1;
    /// @dev Gas kept back for the exact-gas check and the call itself (as Chainlink's
    /// `callWithExactGas`): enough that the consumer surely receives `callbackGasLimit`.
    uint256 private constant _GAS_FOR_CALL_EXACT_CHECK = 5_000;
    uint8 public constant MAX_REDUNDANCY = 7;

    IModelRegistry private immutable _MODELS;
    INodeRegistry private immutable _NODES;
    ISettlement private immutable _SETTLEMENT;

    // One slot: read and written once per request.
    uint64 private _requestCount;
    uint32 private _maxInputBytes;
    uint32 private _maxCallbackGasLimit;
    uint32 private _requestTimeout;

    mapping(uint256 requestId => bytes32 stateAndCommitment) private _slots;

    // Redundant requests only: each node's answer, the count per answer, where agreement stands.
    mapping(uint256 requestId => mapping(address node => bytes32 answerKey)) private _answers;
    mapping(uint256 requestId => mapping(bytes32 answerKey => uint256 count)) private _tally;
    mapping(uint256 requestId => Agreement) private _agreements;

    constructor(IModelRegistry models_, INodeRegistry nodes_, ISettlement settlement_) {
        if (
            address(models_) == address(0) ||
            address(nodes_) == address(0) ||
            address(settlement_) == address(0)
        ) {
            revert System__ZeroAddress();
        }
        _MODELS = models_;
        _NODES = nodes_;
        _SETTLEMENT = settlement_;
    }

    function initialize(address owner_, HubParams calldata params_) external initializer onlyDeployer {
        __SystemContract_init(owner_);
        _setParams(params_);
    }

    /// @notice Governance: change the input size cap, the callback gas cap and the timeout.
    function setParams(HubParams calldata params_) external onlyOwner {
        _setParams(params_);
    }

    // ----------------------------------------------------------------------------- requests

    /// @inheritdoc IInferenceHub
    function requestInference(
        bytes32 modelId,
        bytes calldata input,
        uint32 callbackGasLimit
    ) external payable returns (uint256) {
        if (input.length == 0) revert Hub__EmptyInput();
        return _request(modelId, sha256(input), false, callbackGasLimit, input, 1);
    }

    /// @inheritdoc IInferenceHub
    function requestInferenceRedundant(
        bytes32 modelId,
        bytes calldata input,
        uint32 callbackGasLimit,
        uint8 redundancy
    ) external payable returns (uint256) {
        if (input.length == 0) revert Hub__EmptyInput();
        if (redundancy < 2 || redundancy > MAX_REDUNDANCY)
            revert Hub__InvalidRedundancy(redundancy, MAX_REDUNDANCY);
        return _request(modelId, sha256(input), false, callbackGasLimit, input, redundancy);
    }

    /// @inheritdoc IInferenceHub
    function requestInferenceRef(
        bytes32 modelId,
        bytes32 inputSha256,
        string calldata inputUri,
        uint32 callbackGasLimit
    ) external payable returns (uint256) {
        if (inputSha256 == bytes32(0)) revert Hub__ZeroInputHash();
        if (bytes(inputUri).length == 0) revert Hub__EmptyInputUri();
        return _request(modelId, inputSha256, true, callbackGasLimit, bytes(inputUri), 1);
    }

    function _request(
        bytes32 modelId,
        bytes32 inputHash,
        bool inputIsRef,
        uint32 callbackGasLimit,
        bytes memory input, // the inline input, or the input's URI when inputIsRef
        uint8 redundancy
    ) private returns (uint256 requestId) {
        ModelTerms memory t = _MODELS.terms(modelId);
        if (!t.registered || t.deprecated) revert Hub__ModelNotActive(modelId);
        uint256 fee = uint256(t.fee) * redundancy;
        if (msg.value < fee) revert Hub__FeeTooLow(modelId, msg.value, fee);

        // Read here, with the counter in the same slot. A URI is held to the same cap.
        uint32 maxInput = _maxInputBytes;
        if (input.length > maxInput) revert Hub__InputTooLarge(input.length, maxInput);
        uint32 maxGas = _maxCallbackGasLimit;
        if (callbackGasLimit > maxGas) revert Hub__CallbackGasTooHigh(callbackGasLimit, maxGas);

        requestId = ++_requestCount;
        Request memory r = Request({
            requestId: requestId,
            modelId: modelId,
            requester: msg.sender,
            callbackGasLimit: callbackGasLimit,
            deadline: uint64(block.timestamp) + _requestTimeout,
            fee: msg.value,
            inputHash: inputHash,
            inputIsRef: inputIsRef,
            redundancy: redundancy
        });
        _slots[requestId] = _pack(RequestState.Pending, keccak256(abi.encode(r)));
        emit InferenceRequested(requestId, modelId, msg.sender, r, input);
    }

    // --------------------------------------------------------------------------- fulfilment

    /// @inheritdoc IInferenceHub
    function fulfill(
        Request calldata request,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash
    ) external {
        if (request.redundancy > 1) {
            if (!_NODES.isActive(msg.sender, Roles.INFERENCE)) revert Hub__NotInferenceNode(msg.sender);
            _answer(request, status, output, outputHash, true);
            return;
        }
        uint256 requestId = request.requestId;
        bytes32 commitment = _checkPending(request);
        if (block.timestamp > request.deadline) revert Hub__RequestExpired(requestId, request.deadline);
        if (!_NODES.isActive(msg.sender, Roles.INFERENCE)) revert Hub__NotInferenceNode(msg.sender);
        _record(request, commitment, status, output, outputHash);
    }

    /// @inheritdoc IInferenceHub
    function fulfillBatch(FulfillParams[] calldata items) external returns (uint256 recorded) {
        if (!_NODES.isActive(msg.sender, Roles.INFERENCE)) revert Hub__NotInferenceNode(msg.sender);
        for (uint256 i = 0; i < items.length; ++i) {
            FulfillParams calldata item = items[i];
            Request calldata request = item.request;
            if (request.redundancy > 1) {
                if (_answer(request, item.status, item.output, item.outputHash, false)) ++recorded;
                continue;
            }
            bytes32 slot = _slots[request.requestId];
            // Answered by another node, refunded, or past its deadline: skip, as a race lost.
            if (_state(slot) != RequestState.Pending || block.timestamp > request.deadline) continue;
            bytes32 commitment = keccak256(abi.encode(request));
            if (_hashPart(slot) != _hashPart(commitment)) revert Hub__CommitmentMismatch(request.requestId);
            _record(request, commitment, item.status, item.output, item.outputHash);
            ++recorded;
        }
    }

    /// @dev One node's answer to a redundant request. `strict` reverts where `fulfillBatch`
    /// skips (expired, ended, already answered by this node, all answers in). The answer that
    /// gives one answer key a majority of `redundancy` becomes the result; later answers are
    /// only counted, for payment or slashing.
    function _answer(
        Request calldata request,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash,
        bool strict
    ) private returns (bool) {
        uint256 requestId = request.requestId;
        if (block.timestamp > request.deadline) {
            if (strict) revert Hub__RequestExpired(requestId, request.deadline);
            return false;
        }
        RequestState state = _state(_slots[requestId]);
        Agreement storage a = _agreements[requestId];
        bytes32 commitment = keccak256(abi.encode(request));
        if (state == RequestState.Pending) {
            if (_hashPart(_slots[requestId]) != _hashPart(commitment))
                revert Hub__CommitmentMismatch(requestId);
        } else if (state == RequestState.Fulfilled && a.agreedKey != bytes32(0)) {
            if (a.requestHash != commitment) revert Hub__CommitmentMismatch(requestId);
        } else {
            if (strict) _revertState(requestId, state);
            return false;
        }
        if (_answers[requestId][msg.sender] != bytes32(0)) {
            if (strict) revert Hub__AlreadyAnswered(requestId, msg.sender);
            return false;
        }
        uint8 answers = a.answers;
        if (answers >= request.redundancy) {
            if (strict) revert Hub__AnswersComplete(requestId);
            return false;
        }
        _checkOutput(requestId, status, output, outputHash);
        bytes32 key = _answerKey(status, outputHash);
        _answers[requestId][msg.sender] = key;
        a.answers = ++answers;
        uint256 count = ++_tally[requestId][key];
        emit AnswerSubmitted(requestId, msg.sender, status, outputHash, answers);
        if (state == RequestState.Fulfilled) {
            if (key == a.agreedKey) ++a.agreeing;
        } else if (count > request.redundancy / 2) {
            a.requestHash = commitment;
            a.agreedKey = key;
            a.agreeing = uint8(count);
            _record(request, commitment, status, output, outputHash);
        } else if (answers == request.redundancy) {
            _slots[requestId] = _pack(RequestState.Refunded, commitment);
            emit NoAgreement(requestId, answers);
            _refund(request, RequestState.Refunded);
        }
        return true;
    }

    function _checkOutput(
        uint256 requestId,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash
    ) private pure {
        if (status == ResultStatus.SuccessOffchain) {
            // The bytes live off chain; `output` is where. Verifiers re-execute to check the hash.
            if (output.length == 0) revert Hub__EmptyOutput(requestId);
        } else {
            if (status == ResultStatus.Success && output.length == 0) revert Hub__EmptyOutput(requestId);
            bytes32 actual = keccak256(output);
            if (actual != outputHash) revert Hub__OutputHashMismatch(requestId, outputHash, actual);
        }
    }

    function _answerKey(ResultStatus status, bytes32 outputHash) private pure returns (bytes32) {
        return keccak256(abi.encode(status, outputHash));
    }

    function _record(
        Request calldata request,
        bytes32 commitment,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash
    ) private {
        uint256 requestId = request.requestId;
        uint64 fulfilledAt = uint64(block.timestamp);
        _checkOutput(requestId, status, output, outputHash);

        if (status <= ResultStatus.SuccessOffchain) {
            bytes32 h = keccak256(abi.encode(commitment, msg.sender, outputHash, fulfilledAt));
            _slots[requestId] = _pack(RequestState.Fulfilled, h);
        } else {
            // An error answer ends the request: the fee goes back to the requester.
            _slots[requestId] = _pack(RequestState.Failed, commitment);
            _refund(request, RequestState.Failed);
        }

        CallbackResult cb = CallbackResult.NotRequested;
        if (request.callbackGasLimit != 0) {
            cb = _callback(request, status, output, outputHash);
        }
        emit InferenceFulfilled(requestId, msg.sender, status, outputHash, fulfilledAt, cb, output);
    }

    /// @dev Delivers the answer to the consumer (see `_callWithExactGas`).
    function _callback(
        Request calldata request,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash
    ) private returns (CallbackResult) {
        bytes memory data = abi.encodeCall(
            IInferenceConsumer.rawFulfillInference,
            (request.requestId, uint8(status), output, outputHash)
        );
        return _callWithExactGas(request, data);
    }

    /// @dev Calls the requester with exactly `callbackGasLimit` gas and copies no return data, so
    /// a reverting, looping or return-bombing consumer costs the caller at most that much gas.
    function _callWithExactGas(Request calldata request, bytes memory data) private returns (CallbackResult) {
        address target = request.requester;
        if (target.code.length == 0) return CallbackResult.NoCode;
        uint256 gasLimit = request.callbackGasLimit;
        bool enough;
        bool ok;
        assembly ("memory-safe") {
            let g := gas()
            if gt(g, _GAS_FOR_CALL_EXACT_CHECK) {
                g := sub(g, _GAS_FOR_CALL_EXACT_CHECK)
                // EIP-150 forwards at most 63/64 of what is left; make sure that covers the limit.
                enough := gt(sub(g, div(g, 64)), gasLimit)
            }
            if enough {
                ok := call(gasLimit, target, 0, add(data, 0x20), mload(data), 0, 0)
            }
        }
        if (!enough) revert Hub__InsufficientGasForCallback(request.requestId, request.callbackGasLimit);
        return ok ? CallbackResult.Success : CallbackResult.Reverted;
    }

    // ------------------------------------------------------------------- refunds, settlement

    /// @inheritdoc IInferenceHub
    function refundExpired(Request calldata request) external {
        bytes32 commitment = _checkPending(request);
        if (block.timestamp <= request.deadline) revert Hub__NotExpired(request.requestId, request.deadline);
        _slots[request.requestId] = _pack(RequestState.Refunded, commitment);
        _refund(request, RequestState.Refunded);
    }

    /// @inheritdoc IInferenceHub
    function release(
        Request calldata request,
        Fulfillment calldata fulfillment
    ) external returns (uint256 fee) {
        bytes32 h = _settlementCheck(request, fulfillment, RequestState.Fulfilled);
        _slots[request.requestId] = _pack(RequestState.Finalized, h);
        fee = request.fee;
        emit RequestReleased(request.requestId, fee);
        (bool ok, ) = address(_SETTLEMENT).call{value: fee}("");
        if (!ok) revert Hub__TransferFailed(address(_SETTLEMENT), fee);
    }

    /// @inheritdoc IInferenceHub
    function holdForDispute(Request calldata request, Fulfillment calldata fulfillment) external {
        bytes32 h = _settlementCheck(request, fulfillment, RequestState.Fulfilled);
        _slots[request.requestId] = _pack(RequestState.Challenged, h);
        emit ResultChallenged(request.requestId, fulfillment.node);
    }

    /// @inheritdoc IInferenceHub
    function endDispute(
        Request calldata request,
        Fulfillment calldata fulfillment,
        bool overturned,
        bytes32 correctOutputHash
    ) external {
        bytes32 h = _settlementCheck(request, fulfillment, RequestState.Challenged);
        uint256 requestId = request.requestId;
        if (!overturned) {
            _slots[requestId] = _pack(RequestState.Fulfilled, h);
            emit ChallengeCleared(requestId);
            return;
        }
        _slots[requestId] = _pack(RequestState.Overturned, h);
        _refund(request, RequestState.Overturned);
        CallbackResult cb = CallbackResult.NotRequested;
        if (request.callbackGasLimit != 0) {
            cb = _callWithExactGas(
                request,
                abi.encodeCall(
                    IInferenceConsumer.rawInferenceOverturned,
                    (requestId, fulfillment.outputHash, correctOutputHash)
                )
            );
        }
        emit InferenceOverturned(requestId, fulfillment.node, fulfillment.outputHash, correctOutputHash, cb);
    }

    /// @dev Only Settlement; the request must be in `expected` with this fulfilment recorded.
    function _settlementCheck(
        Request calldata request,
        Fulfillment calldata fulfillment,
        RequestState expected
    ) private view returns (bytes32 h) {
        if (msg.sender != address(_SETTLEMENT)) revert Hub__OnlySettlement(msg.sender);
        uint256 requestId = request.requestId;
        bytes32 slot = _slots[requestId];
        RequestState state = _state(slot);
        if (state != expected) _revertState(requestId, state);
        h = _fulfillmentHash(keccak256(abi.encode(request)), fulfillment);
        if (_hashPart(slot) != _hashPart(h)) revert Hub__CommitmentMismatch(requestId);
    }

    function _refund(Request calldata request, RequestState reason) private {
        emit RequestRefunded(request.requestId, request.requester, request.fee, reason);
        _SETTLEMENT.creditRefund{value: request.fee}(request.requestId, request.requester);
    }

    // -------------------------------------------------------------------------------- views

    /// @inheritdoc IInferenceHub
    function requestState(uint256 requestId) external view returns (RequestState) {
        return _state(_slots[requestId]);
    }

    /// @inheritdoc IInferenceHub
    function answerOf(uint256 requestId, address node) external view returns (bytes32) {
        return _answers[requestId][node];
    }

    /// @inheritdoc IInferenceHub
    function agreementOf(uint256 requestId) external view returns (Agreement memory) {
        return _agreements[requestId];
    }

    /// @inheritdoc IInferenceHub
    function answerKey(ResultStatus status, bytes32 outputHash) external pure returns (bytes32) {
        return _answerKey(status, outputHash);
    }

    /// @inheritdoc IInferenceHub
    function commitmentOf(uint256 requestId) external view returns (bytes32) {
        return _slots[requestId];
    }

    /// @inheritdoc IInferenceHub
    function requestCount() external view returns (uint256) {
        return _requestCount;
    }

    /// @inheritdoc IInferenceHub
    function params() external view returns (HubParams memory) {
        return
            HubParams({
                maxInputBytes: _maxInputBytes,
                maxCallbackGasLimit: _maxCallbackGasLimit,
                requestTimeout: _requestTimeout
            });
    }

    /// @inheritdoc IInferenceHub
    function hashRequest(Request calldata request) external pure returns (bytes32) {
        return keccak256(abi.encode(request));
    }

    /// @inheritdoc IInferenceHub
    function hashFulfillment(
        Request calldata request,
        Fulfillment calldata fulfillment
    ) external pure returns (bytes32) {
        return _fulfillmentHash(keccak256(abi.encode(request)), fulfillment);
    }

    // ------------------------------------------------------------------------------ helpers

    /// @dev Loads the slot, requires Pending and a matching commitment; returns the full hash.
    function _checkPending(Request calldata request) private view returns (bytes32 commitment) {
        bytes32 slot = _slots[request.requestId];
        RequestState state = _state(slot);
        if (state != RequestState.Pending) _revertState(request.requestId, state);
        commitment = keccak256(abi.encode(request));
        if (_hashPart(slot) != _hashPart(commitment)) revert Hub__CommitmentMismatch(request.requestId);
    }

    function _revertState(uint256 requestId, RequestState state) private pure {
        if (state == RequestState.None) revert Hub__UnknownRequest(requestId);
        revert Hub__WrongState(requestId, state);
    }

    function _fulfillmentHash(bytes32 commitment, Fulfillment calldata f) private pure returns (bytes32) {
        return keccak256(abi.encode(commitment, f.node, f.outputHash, f.fulfilledAt));
    }

    function _pack(RequestState state, bytes32 h) private pure returns (bytes32) {
        return bytes32((uint256(state) << _STATE_SHIFT) | (uint256(h) & _HASH_MASK));
    }

    function _state(bytes32 slot) private pure returns (RequestState) {
        return RequestState(uint256(slot) >> _STATE_SHIFT);
    }

    function _hashPart(bytes32 h) private pure returns (uint256) {
        return uint256(h) & _HASH_MASK;
    }

    function _setParams(HubParams calldata p) private {
        if (p.maxInputBytes == 0 || p.requestTimeout == 0) revert Hub__InvalidParams();
        _maxInputBytes = p.maxInputBytes;
        _maxCallbackGasLimit = p.maxCallbackGasLimit;
        _requestTimeout = p.requestTimeout;
        emit HubParamsChanged(p);
    }
}
