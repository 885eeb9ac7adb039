// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// How many reporters a feed may list; each holds one bit of a round's bitmaps.
uint256 constant DATA_FEEDS_MAX_REPORTERS = 16;
// How many answered rounds a feed keeps readable (`recentValues`, `getRound`).
uint256 constant DATA_FEEDS_HISTORY_SIZE = 32;

/// @notice A feed's tunable parameters, as governance sets them.
struct FeedParams {
    uint8 quorum; // reports that answer a round; the value is their median
    uint32 maxStaleness; // seconds after which `latestValue` refuses the latest answer
    uint16 maxDeviationBps; // a report further than this from its round's median is flagged
}

/// @notice Everything about one feed, for off-chain readers.
struct FeedInfo {
    bytes32 feedId;
    string description;
    uint8 decimals;
    FeedParams params;
    uint64 latestRoundId; // 0 until the first round is answered
    address[] reporters; // listed reporters, by slot order
}

/// @notice One round as readers and reporters see it. `expected` and `reported` are bitmaps
/// over reporter slots (`reporterStats(...).slot`).
struct RoundInfo {
    uint64 roundId;
    int256 value; // the median; 0 while the round is open
    uint64 startedAt; // the first report's block timestamp; 0 if nobody has reported yet
    uint64 updatedAt; // when the quorum was reached; 0 while the round is open
    uint16 expected; // slots listed when the round started (they may report in it)
    uint16 reported; // slots that have reported, in time or late
    uint8 reports; // reports counted in the median (the quorum once answered)
}

/// @notice A reporter's standing on one feed and what it has done there; one storage slot.
struct ReporterStats {
    bool listed;
    uint8 slot; // bit position in round bitmaps while listed
    uint48 reports; // every accepted report, in time or late
    uint48 late; // reports for a round already answered (not in its median)
    uint48 deviations; // reports further than maxDeviationBps from their round's median
    uint48 missed; // rounds it was expected in and never reported
}

// ------------------------------------------------------------------------ storage layout

/// @dev One feed's state. Fixed-size arrays keep every loop bounded and their slots warm:
/// `pending` holds the open round's reports by reporter slot, `open` the open round, and
/// `history` the last answered rounds (by roundId % HISTORY_SIZE).
struct FeedState {
    // slot 0
    bool exists;
    uint8 decimals;
    uint8 quorum;
    uint8 reporterCount;
    uint16 reporterMask;
    uint16 maxDeviationBps;
    uint32 maxStaleness;
    uint64 latestRoundId;
    // the rest
    address[DATA_FEEDS_MAX_REPORTERS] reporters;
    int256[DATA_FEEDS_MAX_REPORTERS] pending;
    RoundState open;
    RoundRecord[DATA_FEEDS_HISTORY_SIZE] history;
    string description;
}

/// @dev A round's bookkeeping; one slot. `updatedAt` is 0 until the round is answered.
struct RoundState {
    uint64 roundId;
    uint64 startedAt;
    uint64 updatedAt;
    uint16 expected;
    uint16 reported;
    uint8 reports;
}

/// @dev An answered round; two slots.
struct RoundRecord {
    int256 value;
    RoundState state;
}

/// @title Data feeds: outside values (prices and the like) reported by staked DATA nodes.
/// @notice Governance creates a feed with a list of reporters (at most 16) and a quorum. Rounds
/// are numbered 1, 2, 3, ...; round `latestRoundId + 1` is open. Each listed reporter that is an
/// active DATA node in the NodeRegistry reports once per round; the `quorum`-th report answers
/// the round with the median of the reports (for an even count, the mean of the two middle
/// values, rounded toward zero) and the block timestamp.
/// After that the answered round still takes late reports until the next round is answered: a
/// late report never changes the value, but it is compared with it like any other. Every report
/// further than `maxDeviationBps` from its round's median emits `ReportDeviated` and counts as a
/// deviation; a reporter expected in a round that never reported in it is counted as missed (and
/// `ReportMissed` emitted) when the next round is answered.
interface IDataFeeds {
    event FeedCreated(bytes32 indexed feedId, string description, uint8 decimals, FeedParams params);
    event FeedParamsChanged(bytes32 indexed feedId, FeedParams params);
    event ReporterAdded(bytes32 indexed feedId, address indexed reporter, uint8 slot);
    event ReporterRemoved(bytes32 indexed feedId, address indexed reporter, uint8 slot);
    event ReportSubmitted(
        bytes32 indexed feedId,
        uint64 indexed roundId,
        address indexed reporter,
        int256 value,
        bool late
    );
    event RoundAnswered(bytes32 indexed feedId, uint64 indexed roundId, int256 value, uint64 updatedAt);
    event ReportDeviated(
        bytes32 indexed feedId,
        uint64 indexed roundId,
        address indexed reporter,
        int256 value,
        int256 median,
        uint256 deviationBps
    );
    event ReportMissed(bytes32 indexed feedId, uint64 indexed roundId, address indexed reporter);

    error DataFeeds__ZeroFeedId();
    error DataFeeds__FeedExists(bytes32 feedId);
    error DataFeeds__UnknownFeed(bytes32 feedId);
    error DataFeeds__DecimalsTooHigh(uint8 decimals, uint8 maxDecimals);
    error DataFeeds__InvalidQuorum(bytes32 feedId, uint8 quorum, uint256 reporters);
    error DataFeeds__ZeroMaxStaleness(bytes32 feedId);
    error DataFeeds__ZeroMaxDeviation(bytes32 feedId);
    error DataFeeds__TooManyReporters(bytes32 feedId, uint256 maxReporters);
    error DataFeeds__ZeroReporter(bytes32 feedId);
    error DataFeeds__AlreadyReporter(bytes32 feedId, address reporter);
    error DataFeeds__NotReporter(bytes32 feedId, address reporter);
    error DataFeeds__NotDataNode(address reporter);
    error DataFeeds__WrongRound(bytes32 feedId, uint64 roundId, uint64 openRoundId);
    error DataFeeds__NotInRound(bytes32 feedId, uint64 roundId, address reporter);
    error DataFeeds__AlreadyReported(bytes32 feedId, uint64 roundId, address reporter);
    error DataFeeds__NoData(bytes32 feedId);
    error DataFeeds__Stale(bytes32 feedId, uint64 updatedAt, uint32 maxStaleness);
    error DataFeeds__RoundNotAvailable(bytes32 feedId, uint64 roundId);

    /// @notice Governance: create `feedId` (e.g. keccak256("ETH/USD")) with its first reporters.
    /// @param decimals fixed-point decimals of the values (at most 18)
    /// @param quorum reports that answer a round (1..reporters.length)
    /// @param maxStaleness seconds after which `latestValue` reverts (> 0)
    /// @param maxDeviationBps distance from the median, in basis points, that flags a report (> 0)
    function createFeed(
        bytes32 feedId,
        string calldata description,
        uint8 decimals,
        uint8 quorum,
        uint32 maxStaleness,
        uint16 maxDeviationBps,
        address[] calldata reporters
    ) external;

    /// @notice Governance: change a feed's quorum, staleness limit and deviation threshold. A
    /// quorum that the open round already meets answers it at once.
    function setFeedParams(bytes32 feedId, FeedParams calldata params) external;

    /// @notice Governance: list a reporter. It takes the lowest free slot and may report from
    /// the next round that starts; rounds already started do not expect it.
    function addReporter(bytes32 feedId, address reporter) external;

    /// @notice Governance: unlist a reporter. Its reports already made stay counted; rounds not
    /// yet closed stop expecting it. The quorum must stay within the remaining reporters.
    function removeReporter(bytes32 feedId, address reporter) external;

    /// @notice Report `value` for `roundId`: the open round (`latestRoundId + 1`), or late for
    /// the last answered one (`latestRoundId`). Only a listed reporter that is an active DATA
    /// node, once per round.
    function report(bytes32 feedId, uint64 roundId, int256 value) external;

    /// @notice The last answered round (all zero but `decimals` before the first).
    function latestRound(
        bytes32 feedId
    ) external view returns (uint64 roundId, int256 value, uint8 decimals, uint64 updatedAt);

    /// @notice The last answered value; reverts `DataFeeds__NoData` before the first answer and
    /// `DataFeeds__Stale` when it is older than the feed's `maxStaleness`.
    function latestValue(bytes32 feedId) external view returns (int256 value);

    /// @notice Up to `n` of the last answered values (at most HISTORY_SIZE), oldest first.
    function recentValues(bytes32 feedId, uint256 n) external view returns (int256[] memory values);

    /// @notice A round in reach: the open one, or one of the last HISTORY_SIZE answered.
    function getRound(bytes32 feedId, uint64 roundId) external view returns (RoundInfo memory);

    function feed(bytes32 feedId) external view returns (FeedInfo memory);
    function feedCount() external view returns (uint256);
    function feedIdAt(uint256 index) external view returns (bytes32);
    function reporterStats(bytes32 feedId, address reporter) external view returns (ReporterStats memory);
    function nodeRegistry() external view returns (address);
}
