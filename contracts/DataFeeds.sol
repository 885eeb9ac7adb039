// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";
import {SystemContract} from "./base/SystemContract.sol";
import {
    IDataFeeds,
    FeedParams,
    FeedInfo,
    RoundInfo,
    ReporterStats,
    FeedState,
    RoundState,
    RoundRecord,
    DATA_FEEDS_MAX_REPORTERS,
    DATA_FEEDS_HISTORY_SIZE
} from "./interfaces/IDataFeeds.sol";
import {INodeRegistry, Roles} from "./interfaces/INodeRegistry.sol";

/// @title DataFeeds
/// @notice Outside values reported by staked DATA nodes, answered per round with the median of a
/// quorum of reports. Deviating and silent reporters are counted on chain (see IDataFeeds).
/// Every loop runs over at most MAX_REPORTERS slots.
contract DataFeeds is IDataFeeds, SystemContract {
    uint256 public constant MAX_REPORTERS = DATA_FEEDS_MAX_REPORTERS;
    uint256 public constant HISTORY_SIZE = DATA_FEEDS_HISTORY_SIZE;
    uint8 public constant MAX_DECIMALS = 18;
    uint256 private constant BPS = 10_000;

    INodeRegistry private immutable _NODE_REGISTRY;

    mapping(bytes32 feedId => FeedState) private _feeds;
    mapping(bytes32 feedId => mapping(address reporter => ReporterStats)) private _stats;
    bytes32[] private _feedIds;

    constructor(address nodeRegistry_) {
        if (nodeRegistry_ == address(0)) revert System__ZeroAddress();
        _NODE_REGISTRY = INodeRegistry(nodeRegistry_);
    }

    function initialize(address owner_) external initializer onlyDeployer {
        __SystemContract_init(owner_);
    }

    // ------------------------------------------------------------------------- governance

    /// @inheritdoc IDataFeeds
    function createFeed(
        bytes32 feedId,
        string calldata description,
        uint8 decimals,
        uint8 quorum,
        uint32 maxStaleness,
        uint16 maxDeviationBps,
        address[] calldata reporters
    ) external onlyOwner {
        if (feedId == bytes32(0)) revert DataFeeds__ZeroFeedId();
        FeedState storage f = _feeds[feedId];
        if (f.exists) revert DataFeeds__FeedExists(feedId);
        if (decimals > MAX_DECIMALS) revert DataFeeds__DecimalsTooHigh(decimals, MAX_DECIMALS);
        if (reporters.length > MAX_REPORTERS) revert DataFeeds__TooManyReporters(feedId, MAX_REPORTERS);
        FeedParams memory params = FeedParams({
            quorum: quorum,
            maxStaleness: maxStaleness,
            maxDeviationBps: maxDeviationBps
        });
        _checkParams(feedId, params, reporters.length);

        f.exists = true;
        f.decimals = decimals;
        f.description = description;
        _storeParams(f, params);
        _feedIds.push(feedId);
        emit FeedCreated(feedId, description, decimals, params);
        for (uint256 i = 0; i < reporters.length; ++i) _addReporter(feedId, f, reporters[i]);
    }

    /// @inheritdoc IDataFeeds
    /// @dev A quorum that the open round already meets answers it at once: its reporters
    /// cannot report again, so it could otherwise wait forever.
    function setFeedParams(bytes32 feedId, FeedParams calldata params) external onlyOwner {
        FeedState storage f = _feed(feedId);
        _checkParams(feedId, params, f.reporterCount);
        _storeParams(f, params);
        emit FeedParamsChanged(feedId, params);
        RoundState memory open = f.open;
        if (open.roundId == f.latestRoundId + 1 && open.reports >= params.quorum) _answer(feedId, f, open);
    }

    /// @inheritdoc IDataFeeds
    function addReporter(bytes32 feedId, address reporter) external onlyOwner {
        _addReporter(feedId, _feed(feedId), reporter);
    }

    /// @inheritdoc IDataFeeds
    /// @dev A report the reporter made in the open round is withdrawn with it (it no longer
    /// counts toward the quorum), so that its slot can pass to another reporter cleanly.
    function removeReporter(bytes32 feedId, address reporter) external onlyOwner {
        FeedState storage f = _feed(feedId);
        ReporterStats storage s = _stats[feedId][reporter];
        if (!s.listed) revert DataFeeds__NotReporter(feedId, reporter);
        uint8 remaining = f.reporterCount - 1;
        if (f.quorum > remaining) revert DataFeeds__InvalidQuorum(feedId, f.quorum, remaining);

        uint8 slot = s.slot;
        uint16 bit = uint16(1) << slot;
        s.listed = false;
        f.reporterCount = remaining;
        f.reporterMask &= ~bit;
        f.reporters[slot] = address(0);
        uint64 latest = f.latestRoundId;
        RoundState memory open = f.open;
        if (open.roundId == latest + 1) {
            if (open.reported & bit != 0) {
                open.reported &= ~bit;
                open.reports -= 1;
            }
            open.expected &= ~bit;
            f.open = open;
        }
        if (latest != 0) f.history[latest % HISTORY_SIZE].state.expected &= ~bit;
        emit ReporterRemoved(feedId, reporter, slot);
    }

    // ---------------------------------------------------------------------------- reports

    /// @inheritdoc IDataFeeds
    function report(bytes32 feedId, uint64 roundId, int256 value) external {
        FeedState storage f = _feed(feedId);
        ReporterStats storage s = _stats[feedId][msg.sender];
        if (!s.listed) revert DataFeeds__NotReporter(feedId, msg.sender);
        if (!_NODE_REGISTRY.isActive(msg.sender, Roles.DATA)) revert DataFeeds__NotDataNode(msg.sender);
        uint64 latest = f.latestRoundId;
        if (roundId == latest + 1) {
            _reportOpen(feedId, f, s, roundId, value);
        } else if (roundId == latest && latest != 0) {
            _reportLate(feedId, f, s, roundId, value);
        } else {
            revert DataFeeds__WrongRound(feedId, roundId, latest + 1);
        }
    }

    function _reportOpen(
        bytes32 feedId,
        FeedState storage f,
        ReporterStats storage s,
        uint64 roundId,
        int256 value
    ) private {
        RoundState memory r = f.open;
        if (r.roundId != roundId) {
            r = RoundState({
                roundId: roundId,
                startedAt: uint64(block.timestamp),
                updatedAt: 0,
                expected: f.reporterMask,
                reported: 0,
                reports: 0
            });
        }
        uint8 slot = s.slot;
        uint16 bit = uint16(1) << slot;
        if (r.expected & bit == 0) revert DataFeeds__NotInRound(feedId, roundId, msg.sender);
        if (r.reported & bit != 0) revert DataFeeds__AlreadyReported(feedId, roundId, msg.sender);
        r.reported |= bit;
        r.reports += 1;
        f.pending[slot] = value;
        s.reports += 1;
        emit ReportSubmitted(feedId, roundId, msg.sender, value, false);
        if (r.reports >= f.quorum) _answer(feedId, f, r);
        else f.open = r;
    }

    function _reportLate(
        bytes32 feedId,
        FeedState storage f,
        ReporterStats storage s,
        uint64 roundId,
        int256 value
    ) private {
        RoundRecord storage rec = f.history[roundId % HISTORY_SIZE];
        uint16 bit = uint16(1) << s.slot;
        uint16 reported = rec.state.reported;
        if (rec.state.expected & bit == 0) revert DataFeeds__NotInRound(feedId, roundId, msg.sender);
        if (reported & bit != 0) revert DataFeeds__AlreadyReported(feedId, roundId, msg.sender);
        rec.state.reported = reported | bit;
        s.reports += 1;
        s.late += 1;
        emit ReportSubmitted(feedId, roundId, msg.sender, value, true);
        _checkDeviation(feedId, roundId, msg.sender, value, rec.value, f.maxDeviationBps);
    }

    /// @dev The quorum is in: publish the median, flag deviating reports, close the round before.
    function _answer(bytes32 feedId, FeedState storage f, RoundState memory r) private {
        uint16 reported = r.reported;
        int256[] memory values = new int256[](r.reports);
        uint256 n = 0;
        for (uint256 slot = 0; slot < MAX_REPORTERS; ++slot) {
            if ((reported >> slot) & 1 == 1) values[n++] = f.pending[slot];
        }
        int256 median = _median(values);
        uint64 previous = f.latestRoundId;
        r.updatedAt = uint64(block.timestamp);
        f.history[r.roundId % HISTORY_SIZE] = RoundRecord({value: median, state: r});
        f.latestRoundId = r.roundId;
        emit RoundAnswered(feedId, r.roundId, median, r.updatedAt);

        uint16 maxDeviationBps = f.maxDeviationBps;
        for (uint256 slot = 0; slot < MAX_REPORTERS; ++slot) {
            if ((reported >> slot) & 1 == 1) {
                _checkDeviation(
                    feedId,
                    r.roundId,
                    f.reporters[slot],
                    f.pending[slot],
                    median,
                    maxDeviationBps
                );
            }
        }
        if (previous != 0) _close(feedId, f, previous);
    }

    /// @dev Round `roundId` takes no more late reports: count who never reported in it.
    function _close(bytes32 feedId, FeedState storage f, uint64 roundId) private {
        RoundState storage st = f.history[roundId % HISTORY_SIZE].state;
        uint16 missed = st.expected & ~st.reported;
        for (uint256 slot = 0; missed != 0; ++slot) {
            if (missed & 1 == 1) {
                address reporter = f.reporters[slot];
                _stats[feedId][reporter].missed += 1;
                emit ReportMissed(feedId, roundId, reporter);
            }
            missed >>= 1;
        }
    }

    function _checkDeviation(
        bytes32 feedId,
        uint64 roundId,
        address reporter,
        int256 value,
        int256 median,
        uint16 maxDeviationBps
    ) private {
        uint256 deviationBps = _deviationBps(value, median);
        if (deviationBps > maxDeviationBps) {
            _stats[feedId][reporter].deviations += 1;
            emit ReportDeviated(feedId, roundId, reporter, value, median, deviationBps);
        }
    }

    // ------------------------------------------------------------------------------ reads

    /// @inheritdoc IDataFeeds
    function latestRound(
        bytes32 feedId
    ) external view returns (uint64 roundId, int256 value, uint8 decimals, uint64 updatedAt) {
        FeedState storage f = _feed(feedId);
        roundId = f.latestRoundId;
        decimals = f.decimals;
        if (roundId != 0) {
            RoundRecord storage rec = f.history[roundId % HISTORY_SIZE];
            value = rec.value;
            updatedAt = rec.state.updatedAt;
        }
    }

    /// @inheritdoc IDataFeeds
    function latestValue(bytes32 feedId) external view returns (int256 value) {
        FeedState storage f = _feed(feedId);
        uint64 roundId = f.latestRoundId;
        if (roundId == 0) revert DataFeeds__NoData(feedId);
        RoundRecord storage rec = f.history[roundId % HISTORY_SIZE];
        uint64 updatedAt = rec.state.updatedAt;
        if (block.timestamp - updatedAt > f.maxStaleness) {
            revert DataFeeds__Stale(feedId, updatedAt, f.maxStaleness);
        }
        return rec.value;
    }

    /// @inheritdoc IDataFeeds
    /// @dev No staleness check: read `latestValue` or `latestRound` for that.
    function recentValues(bytes32 feedId, uint256 n) external view returns (int256[] memory values) {
        FeedState storage f = _feed(feedId);
        uint256 latest = f.latestRoundId;
        uint256 count = Math.min(Math.min(n, latest), HISTORY_SIZE);
        values = new int256[](count);
        uint256 first = latest + 1 - count;
        for (uint256 i = 0; i < count; ++i) values[i] = f.history[(first + i) % HISTORY_SIZE].value;
    }

    /// @inheritdoc IDataFeeds
    /// @dev For the open round before its first report, `expected` is who would be expected if
    /// it started now.
    function getRound(bytes32 feedId, uint64 roundId) external view returns (RoundInfo memory info) {
        FeedState storage f = _feed(feedId);
        uint64 latest = f.latestRoundId;
        if (roundId == latest + 1) {
            RoundState memory open = f.open;
            if (open.roundId != roundId) {
                return RoundInfo(roundId, 0, 0, 0, f.reporterMask, 0, 0);
            }
            return RoundInfo(roundId, 0, open.startedAt, 0, open.expected, open.reported, open.reports);
        }
        if (roundId == 0 || roundId > latest || latest - roundId >= HISTORY_SIZE) {
            revert DataFeeds__RoundNotAvailable(feedId, roundId);
        }
        RoundRecord memory rec = f.history[roundId % HISTORY_SIZE];
        RoundState memory st = rec.state;
        return
            RoundInfo(roundId, rec.value, st.startedAt, st.updatedAt, st.expected, st.reported, st.reports);
    }

    /// @inheritdoc IDataFeeds
    function feed(bytes32 feedId) external view returns (FeedInfo memory info) {
        FeedState storage f = _feed(feedId);
        address[] memory reporters = new address[](f.reporterCount);
        uint16 mask = f.reporterMask;
        uint256 n = 0;
        for (uint256 slot = 0; slot < MAX_REPORTERS; ++slot) {
            if ((mask >> slot) & 1 == 1) reporters[n++] = f.reporters[slot];
        }
        info = FeedInfo({
            feedId: feedId,
            description: f.description,
            decimals: f.decimals,
            params: FeedParams({
                quorum: f.quorum,
                maxStaleness: f.maxStaleness,
                maxDeviationBps: f.maxDeviationBps
            }),
            latestRoundId: f.latestRoundId,
            reporters: reporters
        });
    }

    /// @inheritdoc IDataFeeds
    function feedCount() external view returns (uint256) {
        return _feedIds.length;
    }

    /// @inheritdoc IDataFeeds
    function feedIdAt(uint256 index) external view returns (bytes32) {
        return _feedIds[index];
    }

    /// @inheritdoc IDataFeeds
    function reporterStats(bytes32 feedId, address reporter) external view returns (ReporterStats memory) {
        _feed(feedId);
        return _stats[feedId][reporter];
    }

    /// @inheritdoc IDataFeeds
    function nodeRegistry() external view returns (address) {
        return address(_NODE_REGISTRY);
    }

    // ---------------------------------------------------------------------------- helpers

    function _feed(bytes32 feedId) private view returns (FeedState storage f) {
        f = _feeds[feedId];
        if (!f.exists) revert DataFeeds__UnknownFeed(feedId);
    }

    function _addReporter(bytes32 feedId, FeedState storage f, address reporter) private {
        if (reporter == address(0)) revert DataFeeds__ZeroReporter(feedId);
        ReporterStats storage s = _stats[feedId][reporter];
        if (s.listed) revert DataFeeds__AlreadyReporter(feedId, reporter);
        if (f.reporterCount >= MAX_REPORTERS) revert DataFeeds__TooManyReporters(feedId, MAX_REPORTERS);
        uint16 mask = f.reporterMask;
        uint8 slot = 0;
        while ((mask >> slot) & 1 == 1) ++slot;
        f.reporters[slot] = reporter;
        f.reporterMask = mask | (uint16(1) << slot);
        f.reporterCount += 1;
        s.listed = true;
        s.slot = slot;
        emit ReporterAdded(feedId, reporter, slot);
    }

    function _checkParams(bytes32 feedId, FeedParams memory params, uint256 reporterCount) private pure {
        if (params.quorum == 0 || params.quorum > reporterCount) {
            revert DataFeeds__InvalidQuorum(feedId, params.quorum, reporterCount);
        }
        if (params.maxStaleness == 0) revert DataFeeds__ZeroMaxStaleness(feedId);
        if (params.maxDeviationBps == 0) revert DataFeeds__ZeroMaxDeviation(feedId);
    }

    function _storeParams(FeedState storage f, FeedParams memory params) private {
        f.quorum = params.quorum;
        f.maxStaleness = params.maxStaleness;
        f.maxDeviationBps = params.maxDeviationBps;
    }

    /// @dev Sorts `values` in place (insertion sort: at most MAX_REPORTERS of them) and returns
    /// the middle value, or the mean of the two middle values rounded toward zero.
    function _median(int256[] memory values) private pure returns (int256) {
        uint256 n = values.length;
        for (uint256 i = 1; i < n; ++i) {
            int256 v = values[i];
            uint256 j = i;
            while (j > 0 && values[j - 1] > v) {
                values[j] = values[j - 1];
                --j;
            }
            values[j] = v;
        }
        uint256 mid = n / 2;
        if (n % 2 == 1) return values[mid];
        return _meanTowardZero(values[mid - 1], values[mid]);
    }

    /// @dev (lo + hi) / 2 rounded toward zero, for lo <= hi, without overflow.
    function _meanTowardZero(int256 lo, int256 hi) private pure returns (int256 mean) {
        uint256 diff;
        unchecked {
            diff = uint256(hi) - uint256(lo); // hi - lo, exact in 256 bits
        }
        mean = lo + int256(diff / 2); // floor of the mean
        if (diff % 2 == 1 && mean < 0) mean += 1;
    }

    /// @dev |value - median| in basis points of |median|, rounded up; the largest uint256 when
    /// the median is 0 and the value is not, or the distance is beyond any threshold.
    function _deviationBps(int256 value, int256 median) private pure returns (uint256) {
        if (value == median) return 0;
        uint256 diff;
        unchecked {
            diff = value > median ? uint256(value) - uint256(median) : uint256(median) - uint256(value);
        }
        uint256 base = SignedMath.abs(median);
        if (base == 0 || diff > type(uint256).max / BPS) return type(uint256).max;
        return Math.ceilDiv(diff * BPS, base);
    }
}
