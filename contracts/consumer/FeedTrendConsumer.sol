// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {InferenceConsumer} from "./InferenceConsumer.sol";
import {IInferenceHub, ResultStatus} from "../interfaces/IInferenceHub.sol";
import {IDataFeeds} from "../interfaces/IDataFeeds.sol";
import {ISettlement} from "../interfaces/ISettlement.sol";
import {Tensor, DType} from "../interfaces/ITensor.sol";
import {IFeedTrendConsumer, TrendReading, TrendDirection} from "../interfaces/IFeedTrendConsumer.sol";

/// @title FeedTrendConsumer, an example dApp
/// @notice Reads the last WINDOW answered values of a data feed, sends them to the feed-trend
/// model as `prices` [1, WINDOW] (fixed-point with the feed's decimals), and records the model's
/// `trend` and the winning class of its `direction` output when the hub calls back.
contract FeedTrendConsumer is IFeedTrendConsumer, InferenceConsumer {
    uint256 public constant WINDOW = 8;
    uint32 public constant CALLBACK_GAS_LIMIT = 300_000;
    bytes32 private constant TREND = keccak256("trend");
    bytes32 private constant DIRECTION = keccak256("direction");

    IDataFeeds public immutable DATA_FEEDS;
    bytes32 public immutable FEED_ID;
    bytes32 public immutable MODEL_ID;
    address public immutable OWNER;

    mapping(uint256 requestId => TrendReading) private _readings;
    uint256 private _latestRequestId;

    constructor(
        IInferenceHub hub,
        IDataFeeds dataFeeds,
        bytes32 feedId,
        bytes32 modelId
    ) InferenceConsumer(hub) {
        DATA_FEEDS = dataFeeds;
        FEED_ID = feedId;
        MODEL_ID = modelId;
        OWNER = msg.sender;
    }

    /// @inheritdoc IFeedTrendConsumer
    function requestTrend() external payable returns (uint256 requestId) {
        DATA_FEEDS.latestValue(FEED_ID); // reverts DataFeeds__NoData or DataFeeds__Stale
        (uint64 roundId, , uint8 decimals, ) = DATA_FEEDS.latestRound(FEED_ID);
        int256[] memory prices = DATA_FEEDS.recentValues(FEED_ID, WINDOW);
        if (prices.length < WINDOW) revert FeedTrend__NotEnoughHistory(FEED_ID, prices.length, WINDOW);

        Tensor[] memory inputs = new Tensor[](1);
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        shape[1] = uint32(WINDOW);
        inputs[0] = Tensor({
            name: "prices",
            dtype: DType.FLOAT,
            decimals: decimals,
            shape: shape,
            values: prices,
            strings: new string[](0)
        });
        requestId = _requestInference(MODEL_ID, inputs, CALLBACK_GAS_LIMIT, msg.value);
        TrendReading storage r = _readings[requestId];
        r.requester = msg.sender;
        r.roundId = roundId;
        emit TrendRequested(requestId, msg.sender, roundId);
    }

    /// @inheritdoc IFeedTrendConsumer
    function reading(uint256 requestId) external view returns (TrendReading memory) {
        return _readings[requestId];
    }

    /// @inheritdoc IFeedTrendConsumer
    function latestTrend() external view returns (uint256 requestId, TrendReading memory) {
        return (_latestRequestId, _readings[_latestRequestId]);
    }

    /// @inheritdoc IFeedTrendConsumer
    function withdrawRefunds(address settlement) external returns (uint256) {
        if (msg.sender != OWNER) revert FeedTrend__OnlyOwner(msg.sender);
        return ISettlement(settlement).withdraw(payable(OWNER));
    }

    function _onInference(
        uint256 requestId,
        ResultStatus status,
        bytes calldata output,
        bytes32 outputHash
    ) internal override {
        TrendReading storage r = _readings[requestId];
        if (r.requester == address(0)) revert FeedTrend__UnknownRequest(requestId);
        r.answered = true;
        r.status = status;
        r.outputHash = outputHash;
        if (status != ResultStatus.Success) {
            emit TrendAnswered(requestId, r.roundId, status, TrendDirection.Flat, 0, 0);
            return;
        }
        // Outputs arrive sorted by name: find them by name, not position.
        Tensor[] memory outputs = _decodeTensors(output);
        int256[] memory trend;
        int256[] memory direction;
        for (uint256 i = 0; i < outputs.length; ++i) {
            bytes32 name = keccak256(bytes(outputs[i].name));
            if (name == TREND) trend = outputs[i].values;
            else if (name == DIRECTION) direction = outputs[i].values;
        }
        if (trend.length != 1) revert FeedTrend__MissingOutput(requestId, "trend");
        if (direction.length != 3) revert FeedTrend__MissingOutput(requestId, "direction");
        uint256 best = 0;
        for (uint256 i = 1; i < 3; ++i) {
            if (direction[i] > direction[best]) best = i;
        }
        r.direction = TrendDirection(best);
        r.trend = trend[0];
        r.confidence = direction[best];
        if (r.roundId >= _readings[_latestRequestId].roundId) _latestRequestId = requestId;
        emit TrendAnswered(requestId, r.roundId, status, TrendDirection(best), trend[0], direction[best]);
    }
}
