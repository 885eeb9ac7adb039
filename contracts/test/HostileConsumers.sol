// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IInferenceHub, Request, ResultStatus} from "../interfaces/IInferenceHub.sol";
import {InferenceConsumer} from "../consumer/InferenceConsumer.sol";
import {ISettlement, DisputeVerdict} from "../interfaces/ISettlement.sol";
import {IDisputeSource} from "../interfaces/IDisputeSource.sol";

/// @dev Test-only consumers that misbehave in every way a callback can. None of them may stop
/// the hub from recording a result or refunding a fee.
abstract contract TestRequester {
    IInferenceHub internal immutable HUB;

    constructor(IInferenceHub hub) {
        HUB = hub;
    }

    function request(
        bytes32 modelId,
        bytes calldata input,
        uint32 callbackGasLimit
    ) external payable returns (uint256) {
        return HUB.requestInference{value: msg.value}(modelId, input, callbackGasLimit);
    }
}

contract RevertingConsumer is TestRequester {
    error Nope();

    constructor(IInferenceHub hub) TestRequester(hub) {}

    function rawFulfillInference(uint256, uint8, bytes calldata, bytes32) external pure {
        revert Nope();
    }
}

contract GasBurningConsumer is TestRequester {
    uint256 public counter;

    constructor(IInferenceHub hub) TestRequester(hub) {}

    function rawFulfillInference(uint256, uint8, bytes calldata, bytes32) external {
        while (true) {
            ++counter;
        }
    }
}

contract ReturnBombConsumer is TestRequester {
    constructor(IInferenceHub hub) TestRequester(hub) {}

    function rawFulfillInference(uint256, uint8, bytes calldata, bytes32) external pure {
        assembly {
            // 200 kB of return data (about 95k gas of memory here): a caller that copied it
            // into its own memory would pay for that again, and more with every callback.
            return(0, 200000)
        }
    }
}

/// @dev Tries to re-enter the hub from its callback.
contract ReentrantConsumer is TestRequester {
    Request public reentryTarget;
    bool public reentryFailed;

    constructor(IInferenceHub hub) TestRequester(hub) {}

    function setTarget(Request calldata r) external {
        reentryTarget = r;
    }

    function rawFulfillInference(uint256, uint8, bytes calldata output, bytes32 outputHash) external {
        try HUB.fulfill(reentryTarget, ResultStatus.Success, output, outputHash) {} catch {
            reentryFailed = true;
        }
    }
}

/// @dev Stores three values from the output in the callback: the consumer the gas benchmark uses.
contract StoringConsumer is InferenceConsumer {
    int256 public a;
    int256 public b;
    int256 public c;
    uint256 public lastRequestId;
    ResultStatus public lastStatus;

    constructor(IInferenceHub hub) InferenceConsumer(hub) {}

    function request(
        bytes32 modelId,
        bytes calldata input,
        uint32 callbackGasLimit
    ) external payable returns (uint256) {
        return INFERENCE_HUB.requestInference{value: msg.value}(modelId, input, callbackGasLimit);
    }

    function _onInference(
        uint256 requestId,
        ResultStatus status,
        bytes calldata output,
        bytes32
    ) internal override {
        lastRequestId = requestId;
        lastStatus = status;
        if (status != ResultStatus.Success) return;
        int256[] memory v = _decodeTensors(output)[0].values;
        a = v[0];
        b = v[1];
        c = v[2];
    }
}

/// @dev Counts what the hub delivers for each request (single or redundant): a result must arrive
/// exactly once, and an overturn at most once after it.
contract CountingConsumer is InferenceConsumer {
    mapping(uint256 requestId => uint256) public answers;
    mapping(uint256 requestId => uint256) public overturns;

    constructor(IInferenceHub hub) InferenceConsumer(hub) {}

    function request(
        bytes32 modelId,
        bytes calldata input,
        uint32 callbackGasLimit,
        uint8 redundancy
    ) external payable returns (uint256) {
        if (redundancy == 1) {
            return INFERENCE_HUB.requestInference{value: msg.value}(modelId, input, callbackGasLimit);
        }
        return
            INFERENCE_HUB.requestInferenceRedundant{value: msg.value}(
                modelId,
                input,
                callbackGasLimit,
                redundancy
            );
    }

    function _onInference(uint256 requestId, ResultStatus, bytes calldata, bytes32) internal override {
        ++answers[requestId];
    }

    function _onInferenceOverturned(uint256 requestId, bytes32, bytes32) internal override {
        ++overturns[requestId];
    }
}

/// @dev Refuses plain transfers: a withdrawal to it must fail loudly and keep the credit.
contract RejectingReceiver {
    error NoThanks();

    receive() external payable {
        revert NoThanks();
    }

    function call(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }
}

/// @dev The gas benchmark's consumer: stores the three values of each answer. With `keepAll`
/// every answer gets fresh slots (a dApp that keeps history); otherwise the latest answer
/// overwrites the previous one (a dApp that keeps the current value).
contract BenchConsumer is InferenceConsumer {
    struct Result {
        int256 a;
        int256 b;
        int256 c;
    }

    bool public immutable KEEP_ALL;
    Result public latest;
    mapping(uint256 requestId => Result) public results;

    constructor(IInferenceHub hub, bool keepAll) InferenceConsumer(hub) {
        KEEP_ALL = keepAll;
    }

    function request(
        bytes32 modelId,
        bytes calldata input,
        uint32 callbackGasLimit
    ) external payable returns (uint256) {
        return INFERENCE_HUB.requestInference{value: msg.value}(modelId, input, callbackGasLimit);
    }

    function _onInference(
        uint256 requestId,
        ResultStatus status,
        bytes calldata output,
        bytes32
    ) internal override {
        if (status != ResultStatus.Success) return;
        int256[] memory v = _decodeTensors(output)[0].values;
        if (KEEP_ALL) results[requestId] = Result(v[0], v[1], v[2]);
        else latest = Result(v[0], v[1], v[2]);
    }
}

/// @dev A dispute source for tests: opens disputes about its own subjects and records verdicts.
contract TestDisputeSource is IDisputeSource {
    ISettlement public immutable SETTLEMENT;
    mapping(uint256 subjectId => DisputeVerdict) public verdicts;
    uint256 public calls;

    constructor(ISettlement settlement) {
        SETTLEMENT = settlement;
    }

    function open(
        uint256 subjectId,
        address accused,
        bytes32 accusedHash,
        bytes32 claimedHash
    ) external payable returns (uint256) {
        return
            SETTLEMENT.openDispute{value: msg.value}(
                subjectId,
                accused,
                accusedHash,
                claimedHash,
                msg.sender
            );
    }

    function onDisputeResolved(uint256, uint256 subjectId, DisputeVerdict verdict) external {
        require(msg.sender == address(SETTLEMENT), "only settlement");
        verdicts[subjectId] = verdict;
        ++calls;
    }
}
