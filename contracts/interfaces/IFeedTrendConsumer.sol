// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ResultStatus} from "./IInferenceHub.sol";

/// @notice The classes of the feed-trend model's `direction` output, in its order.
enum TrendDirection {
    Up,
    Flat,
    Down
}

/// @notice One trend request and, once answered, its result.
struct TrendReading {
    address requester;
    uint64 roundId; // the newest feed round in the model's input
    bool answered;
    ResultStatus status;
    TrendDirection direction;
    int256 trend; // least-squares slope, basis points of the mean per round, fixed-point (model decimals)
    int256 confidence; // probability of `direction`, fixed-point (model decimals)
    bytes32 outputHash;
}

/// @title An example dApp that closes the loop between data feeds and models: it feeds the last
/// values of a DataFeeds feed to the feed-trend model and records the trend on chain.
interface IFeedTrendConsumer {
    event TrendRequested(uint256 indexed requestId, address indexed requester, uint64 roundId);
    event TrendAnswered(
        uint256 indexed requestId,
        uint64 indexed roundId,
        ResultStatus status,
        TrendDirection direction,
        int256 trend,
        int256 confidence
    );

    error FeedTrend__NotEnoughHistory(bytes32 feedId, uint256 rounds, uint256 window);
    error FeedTrend__UnknownRequest(uint256 requestId);
    error FeedTrend__MissingOutput(uint256 requestId, string name);
    error FeedTrend__OnlyOwner(address caller);

    /// @notice Ask the model for the trend of the feed's last WINDOW values; `msg.value` pays
    /// the model's fee. Reverts (from DataFeeds) when the feed has no fresh value.
    function requestTrend() external payable returns (uint256 requestId);

    /// @notice What became of `requestId`.
    function reading(uint256 requestId) external view returns (TrendReading memory);

    /// @notice The most recent answered reading (by feed round), and its request id (0: none yet).
    function latestTrend() external view returns (uint256 requestId, TrendReading memory);

    /// @notice Fees of failed or expired requests are credited to this contract by the
    /// settlement contract; its deployer collects them.
    function withdrawRefunds(address settlement) external returns (uint256);
}
