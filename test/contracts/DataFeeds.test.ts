import path from "node:path";
import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, setBalance, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, ZeroHash, Wallet, id, keccak256, toUtf8Bytes, type Signer } from "ethers";
import { anyUint } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import * as ort from "onnxruntime-node";
import { DEVNET_PARAMS } from "../../deploy/config";
import { SESSION_OPTIONS, localSession, prepareInputs, runOne } from "../../inference-worker/inference";
import manifest from "../../models/manifest.json";
import { referenceTrend } from "../../models/trend";
import { FIXED_ADDRESSES } from "../../sdk/addresses";
import { decodeTensors, decodeWire } from "../../sdk/tensor";
import type { DataFeeds, FeedTrendConsumer } from "../../typechain-types";
import {
  CALLBACK,
  ROLE,
  STATUS,
  deployFixture,
  encodeTensors,
  floatTensor,
  requestFromTx,
  type Fixture,
} from "./helpers";

const ETH_USD = id("ETH/USD");
const DECIMALS = 8;
const MAX_STALENESS = 3600;
const MAX_DEVIATION_BPS = 500; // 5%
const MAX_REPORTERS = 16;
const HISTORY_SIZE = 32;
const params = (quorum: number, maxStaleness: number, maxDeviationBps: number) => ({
  quorum,
  maxStaleness,
  maxDeviationBps,
});
const usd = (x: number) => BigInt(Math.round(x * 100)) * 10n ** BigInt(DECIMALS - 2);

/** 16 funded accounts staked as DATA nodes, derived from fixed keys. */
async function dataNodes(count = MAX_REPORTERS): Promise<Wallet[]> {
  const nodes = await ethers.getContractAt("NodeRegistry", FIXED_ADDRESSES.nodeRegistry);
  const out: Wallet[] = [];
  for (let i = 0; i < count; i++) {
    const w = new Wallet(keccak256(toUtf8Bytes(`gradnet data node ${i}`)), ethers.provider);
    await setBalance(w.address, 10n ** 20n);
    await nodes.connect(w).register(ROLE.DATA, { value: DEVNET_PARAMS.stake.minStakeData });
    out.push(w);
  }
  return out;
}

interface FeedFixture extends Fixture {
  feeds: DataFeeds;
  reporters: Wallet[];
  /** Not a reporter of any feed, not staked. */
  outsider: Signer;
}

/** The system, 16 staked DATA nodes, and ETH/USD with the first three as reporters, quorum 3. */
async function feedFixture(): Promise<FeedFixture> {
  const f = await loadFixture(deployFixture);
  const reporters = await dataNodes();
  const feeds = f.dataFeeds;
  await feeds.createFeed(
    ETH_USD,
    "ETH / USD",
    DECIMALS,
    3,
    MAX_STALENESS,
    MAX_DEVIATION_BPS,
    reporters.slice(0, 3).map((r) => r.address),
  );
  return { ...f, feeds, reporters, outsider: f.other };
}

/** ETH/USD with four reporters and quorum 2, so that rounds answer before everyone reports. */
async function quorumTwoFixture(): Promise<FeedFixture> {
  const f = await loadFixture(feedFixture);
  await f.feeds.addReporter(ETH_USD, f.reporters[3]!.address);
  await f.feeds.setFeedParams(ETH_USD, {
    quorum: 2,
    maxStaleness: MAX_STALENESS,
    maxDeviationBps: MAX_DEVIATION_BPS,
  });
  return f;
}

/** The median as the contract defines it: the middle value, or the mean of the two middle
 * values rounded toward zero (BigInt division truncates toward zero). */
function referenceMedian(values: readonly bigint[]): bigint {
  const s = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2n;
}

const abs = (x: bigint) => (x < 0n ? -x : x);
const MAX_UINT256 = (1n << 256n) - 1n;

/** The deviation in basis points as the contract computes it (rounded up). */
function referenceDeviationBps(value: bigint, median: bigint): bigint {
  if (value === median) return 0n;
  const diff = abs(value - median);
  if (median === 0n || diff > MAX_UINT256 / 10_000n) return MAX_UINT256;
  return (diff * 10_000n + abs(median) - 1n) / abs(median);
}

describe("DataFeeds", function () {
  describe("deployment", function () {
    it("sits at its fixed address, wired to the NodeRegistry, owned by governance", async function () {
      const f = await loadFixture(feedFixture);
      expect(await f.feeds.getAddress()).to.equal(FIXED_ADDRESSES.dataFeeds);
      expect(await f.feeds.nodeRegistry()).to.equal(FIXED_ADDRESSES.nodeRegistry);
      expect(await f.feeds.owner()).to.equal(await f.owner.getAddress());
      expect(await f.feeds.MAX_REPORTERS()).to.equal(MAX_REPORTERS);
      expect(await f.feeds.HISTORY_SIZE()).to.equal(HISTORY_SIZE);
      await expect(f.feeds.initialize(await f.owner.getAddress())).to.be.revertedWithCustomError(
        f.feeds,
        "InvalidInitialization",
      );
    });

    it("refuses a zero NodeRegistry address", async function () {
      const factory = await ethers.getContractFactory("DataFeeds");
      await expect(factory.deploy(ZeroAddress)).to.be.revertedWithCustomError(factory, "System__ZeroAddress");
    });
  });

  describe("createFeed", function () {
    it("creates a feed, lists its reporters in slots and emits one event per change", async function () {
      const f = await loadFixture(deployFixture);
      const [a, b] = [f.node1, f.node2];
      const feedId = id("BTC/USD");
      const tx = f.dataFeeds.createFeed(feedId, "BTC / USD", 8, 2, 600, 100, [
        await a.getAddress(),
        await b.getAddress(),
      ]);
      await expect(tx).to.emit(f.dataFeeds, "FeedCreated").withArgs(feedId, "BTC / USD", 8, [2, 600, 100]);
      await expect(tx)
        .to.emit(f.dataFeeds, "ReporterAdded")
        .withArgs(feedId, await a.getAddress(), 0);
      await expect(tx)
        .to.emit(f.dataFeeds, "ReporterAdded")
        .withArgs(feedId, await b.getAddress(), 1);
      const info = await f.dataFeeds.feed(feedId);
      expect(info.feedId).to.equal(feedId);
      expect(info.description).to.equal("BTC / USD");
      expect(info.decimals).to.equal(8);
      expect(info.params.quorum).to.equal(2);
      expect(info.params.maxStaleness).to.equal(600);
      expect(info.params.maxDeviationBps).to.equal(100);
      expect(info.latestRoundId).to.equal(0);
      expect(info.reporters).to.deep.equal([await a.getAddress(), await b.getAddress()]);
      expect(await f.dataFeeds.feedCount()).to.equal(1);
      expect(await f.dataFeeds.feedIdAt(0)).to.equal(feedId);
      const stats = await f.dataFeeds.reporterStats(feedId, await b.getAddress());
      expect(stats.listed).to.equal(true);
      expect(stats.slot).to.equal(1);
      const [roundId, value, decimals, updatedAt] = await f.dataFeeds.latestRound(feedId);
      expect([roundId, value, decimals, updatedAt]).to.deep.equal([0n, 0n, 8n, 0n]);
    });

    it("is for governance only", async function () {
      const f = await loadFixture(feedFixture);
      const stranger = f.outsider;
      await expect(
        f.feeds.connect(stranger).createFeed(id("X"), "x", 8, 1, 60, 100, [f.reporters[0]!.address]),
      )
        .to.be.revertedWithCustomError(f.feeds, "OwnableUnauthorizedAccount")
        .withArgs(await stranger.getAddress());
      await expect(f.feeds.connect(stranger).setFeedParams(ETH_USD, params(1, 60, 100)))
        .to.be.revertedWithCustomError(f.feeds, "OwnableUnauthorizedAccount")
        .withArgs(await stranger.getAddress());
      await expect(f.feeds.connect(stranger).addReporter(ETH_USD, f.reporters[5]!.address))
        .to.be.revertedWithCustomError(f.feeds, "OwnableUnauthorizedAccount")
        .withArgs(await stranger.getAddress());
      await expect(f.feeds.connect(stranger).removeReporter(ETH_USD, f.reporters[0]!.address))
        .to.be.revertedWithCustomError(f.feeds, "OwnableUnauthorizedAccount")
        .withArgs(await stranger.getAddress());
    });

    it("refuses bad feeds with a named error", async function () {
      const f = await loadFixture(feedFixture);
      const r = f.reporters.map((w) => w.address);
      const feedId = id("SOL/USD");
      const create = (overrides: {
        feedId?: string;
        decimals?: number;
        quorum?: number;
        maxStaleness?: number;
        maxDeviationBps?: number;
        reporters?: string[];
      }) =>
        f.feeds.createFeed(
          overrides.feedId ?? feedId,
          "SOL / USD",
          overrides.decimals ?? 8,
          overrides.quorum ?? 1,
          overrides.maxStaleness ?? 60,
          overrides.maxDeviationBps ?? 100,
          overrides.reporters ?? r.slice(0, 2),
        );
      await expect(create({ feedId: ZeroHash })).to.be.revertedWithCustomError(
        f.feeds,
        "DataFeeds__ZeroFeedId",
      );
      await expect(create({ feedId: ETH_USD }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__FeedExists")
        .withArgs(ETH_USD);
      await expect(create({ decimals: 19 }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__DecimalsTooHigh")
        .withArgs(19, 18);
      await expect(create({ quorum: 0 }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__InvalidQuorum")
        .withArgs(feedId, 0, 2);
      await expect(create({ quorum: 3 }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__InvalidQuorum")
        .withArgs(feedId, 3, 2);
      await expect(create({ maxStaleness: 0 }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__ZeroMaxStaleness")
        .withArgs(feedId);
      await expect(create({ maxDeviationBps: 0 }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__ZeroMaxDeviation")
        .withArgs(feedId);
      await expect(create({ reporters: [...r, await f.outsider.getAddress()] }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__TooManyReporters")
        .withArgs(feedId, MAX_REPORTERS);
      await expect(create({ reporters: [r[0]!, ZeroAddress] }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__ZeroReporter")
        .withArgs(feedId);
      await expect(create({ reporters: [r[0]!, r[0]!] }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__AlreadyReporter")
        .withArgs(feedId, r[0]!);
      // Sixteen reporters is the limit, not beyond it.
      await expect(create({ reporters: r, quorum: 16 })).to.emit(f.feeds, "FeedCreated");
    });
  });

  describe("rounds", function () {
    it("answers with the median of 3 reports when one reporter is off by 50%, and flags it", async function () {
      const f = await loadFixture(feedFixture);
      const [a, b, c] = f.reporters as [Wallet, Wallet, Wallet];
      await expect(f.feeds.connect(a).report(ETH_USD, 1, usd(2000)))
        .to.emit(f.feeds, "ReportSubmitted")
        .withArgs(ETH_USD, 1, a.address, usd(2000), false);
      await f.feeds.connect(b).report(ETH_USD, 1, usd(2002));
      await expect(f.feeds.latestValue(ETH_USD))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NoData")
        .withArgs(ETH_USD);

      const off = usd(3003); // 50% above b's value
      const tx = f.feeds.connect(c).report(ETH_USD, 1, off);
      const median = usd(2002);
      const deviation = ((off - median) * 10_000n + median - 1n) / median; // rounded up: 5000
      expect(deviation).to.equal(5000n);
      await expect(tx).to.emit(f.feeds, "RoundAnswered");
      await expect(tx)
        .to.emit(f.feeds, "ReportDeviated")
        .withArgs(ETH_USD, 1, c.address, off, median, deviation);
      const answeredAt = BigInt(await time.latest());
      await expect(tx).to.emit(f.feeds, "RoundAnswered").withArgs(ETH_USD, 1, median, answeredAt);

      expect(await f.feeds.latestValue(ETH_USD)).to.equal(median);
      const [roundId, value, decimals, updatedAt] = await f.feeds.latestRound(ETH_USD);
      expect([roundId, value, decimals, updatedAt]).to.deep.equal([1n, median, 8n, answeredAt]);
      const statsOf = (w: Wallet) => f.feeds.reporterStats(ETH_USD, w.address);
      expect((await statsOf(c)).deviations).to.equal(1);
      expect((await statsOf(a)).deviations).to.equal(0); // 0.1% from the median
      expect((await statsOf(b)).deviations).to.equal(0);
      for (const w of [a, b, c]) expect((await statsOf(w)).reports).to.equal(1);

      const round = await f.feeds.getRound(ETH_USD, 1);
      expect(round.value).to.equal(median);
      expect(round.reports).to.equal(3);
      expect(round.expected).to.equal(0b111);
      expect(round.reported).to.equal(0b111);
      expect(round.updatedAt).to.equal(answeredAt);
    });

    it("takes the mean of the two middle values for an even quorum, rounded toward zero", async function () {
      const f = await loadFixture(quorumTwoFixture);
      const [a, b, c, d] = f.reporters as [Wallet, Wallet, Wallet, Wallet];
      await f.feeds.connect(a).report(ETH_USD, 1, -3n);
      await f.feeds.connect(b).report(ETH_USD, 1, 4n);
      expect((await f.feeds.latestRound(ETH_USD))[1]).to.equal(0n); // 0.5 rounds to 0
      await f.feeds.connect(c).report(ETH_USD, 2, -4n);
      await f.feeds.connect(d).report(ETH_USD, 2, -3n);
      expect((await f.feeds.latestRound(ETH_USD))[1]).to.equal(-3n); // -3.5 rounds to -3
      await f.feeds.connect(a).report(ETH_USD, 3, 4n);
      await f.feeds.connect(b).report(ETH_USD, 3, 1n);
      expect((await f.feeds.latestRound(ETH_USD))[1]).to.equal(2n); // 2.5 rounds to 2
    });

    it("stays open until the quorum has reported, and rounds are consecutive", async function () {
      const f = await loadFixture(feedFixture);
      const [a, b, c] = f.reporters as [Wallet, Wallet, Wallet];
      const before = await f.feeds.getRound(ETH_USD, 1);
      expect(before.startedAt).to.equal(0);
      expect(before.expected).to.equal(0b111);
      await expect(f.feeds.connect(a).report(ETH_USD, 2, usd(1)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__WrongRound")
        .withArgs(ETH_USD, 2, 1);
      await expect(f.feeds.connect(a).report(ETH_USD, 0, usd(1)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__WrongRound")
        .withArgs(ETH_USD, 0, 1);
      await f.feeds.connect(a).report(ETH_USD, 1, usd(2000));
      const startedAt = BigInt(await time.latest());
      await f.feeds.connect(b).report(ETH_USD, 1, usd(2001));
      const open = await f.feeds.getRound(ETH_USD, 1);
      expect(open.reports).to.equal(2);
      expect(open.reported).to.equal(0b011);
      expect(open.startedAt).to.equal(startedAt);
      expect(open.updatedAt).to.equal(0);
      expect((await f.feeds.latestRound(ETH_USD))[0]).to.equal(0n);
      await expect(f.feeds.connect(a).report(ETH_USD, 1, usd(2000)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__AlreadyReported")
        .withArgs(ETH_USD, 1, a.address);
      await f.feeds.connect(c).report(ETH_USD, 1, usd(2002));
      expect((await f.feeds.latestRound(ETH_USD))[0]).to.equal(1n);
      await expect(f.feeds.connect(a).report(ETH_USD, 3, usd(1)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__WrongRound")
        .withArgs(ETH_USD, 3, 2);
      await f.feeds.connect(a).report(ETH_USD, 2, usd(2010));
      expect((await f.feeds.getRound(ETH_USD, 2)).reports).to.equal(1);
    });

    it("refuses the value once it is older than maxStaleness", async function () {
      const f = await loadFixture(feedFixture);
      for (const [i, w] of f.reporters.slice(0, 3).entries())
        await f.feeds.connect(w).report(ETH_USD, 1, usd(2000 + i));
      const updatedAt = BigInt(await time.latest());
      await time.increaseTo(updatedAt + BigInt(MAX_STALENESS));
      expect(await f.feeds.latestValue(ETH_USD)).to.equal(usd(2001));
      await time.increase(1);
      await expect(f.feeds.latestValue(ETH_USD))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__Stale")
        .withArgs(ETH_USD, updatedAt, MAX_STALENESS);
      // latestRound still answers, with the timestamp to judge by.
      expect((await f.feeds.latestRound(ETH_USD))[3]).to.equal(updatedAt);
      // A fresh round makes it current again.
      for (const w of f.reporters.slice(0, 3)) await f.feeds.connect(w).report(ETH_USD, 2, usd(2100));
      expect(await f.feeds.latestValue(ETH_USD)).to.equal(usd(2100));
    });

    it("takes a late report for the last answered round without changing it, and checks it", async function () {
      const f = await loadFixture(quorumTwoFixture);
      const [a, b, c, d] = f.reporters as [Wallet, Wallet, Wallet, Wallet];
      await f.feeds.connect(a).report(ETH_USD, 1, usd(2000));
      await f.feeds.connect(b).report(ETH_USD, 1, usd(2000));
      await expect(f.feeds.connect(c).report(ETH_USD, 1, usd(2010)))
        .to.emit(f.feeds, "ReportSubmitted")
        .withArgs(ETH_USD, 1, c.address, usd(2010), true);
      const late = usd(1000);
      await expect(f.feeds.connect(d).report(ETH_USD, 1, late))
        .to.emit(f.feeds, "ReportDeviated")
        .withArgs(ETH_USD, 1, d.address, late, usd(2000), 5000n);
      await expect(f.feeds.connect(c).report(ETH_USD, 1, usd(2010)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__AlreadyReported")
        .withArgs(ETH_USD, 1, c.address);
      const round = await f.feeds.getRound(ETH_USD, 1);
      expect(round.value).to.equal(usd(2000));
      expect(round.reports).to.equal(2);
      expect(round.reported).to.equal(0b1111);
      const sc = await f.feeds.reporterStats(ETH_USD, c.address);
      expect([sc.reports, sc.late, sc.deviations, sc.missed]).to.deep.equal([1n, 1n, 0n, 0n]);
      const sd = await f.feeds.reporterStats(ETH_USD, d.address);
      expect([sd.reports, sd.late, sd.deviations, sd.missed]).to.deep.equal([1n, 1n, 1n, 0n]);
      // Once round 2 is answered, round 1 is closed.
      await f.feeds.connect(c).report(ETH_USD, 2, usd(2000));
      await f.feeds.connect(d).report(ETH_USD, 2, usd(2000));
      await expect(f.feeds.connect(a).report(ETH_USD, 1, usd(2000)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__WrongRound")
        .withArgs(ETH_USD, 1, 3);
    });

    it("counts a silent reporter as missed when the next round is answered", async function () {
      const f = await loadFixture(quorumTwoFixture);
      const [a, b, c, d] = f.reporters as [Wallet, Wallet, Wallet, Wallet];
      await f.feeds.connect(a).report(ETH_USD, 1, usd(2000));
      await f.feeds.connect(b).report(ETH_USD, 1, usd(2000));
      await f.feeds.connect(c).report(ETH_USD, 1, usd(2000)); // late, still counts as present
      await f.feeds.connect(a).report(ETH_USD, 2, usd(2001));
      const tx = f.feeds.connect(b).report(ETH_USD, 2, usd(2001));
      await expect(tx).to.emit(f.feeds, "ReportMissed").withArgs(ETH_USD, 1, d.address);
      await expect(tx).to.not.emit(f.feeds, "ReportDeviated");
      const missed = async (w: Wallet) => (await f.feeds.reporterStats(ETH_USD, w.address)).missed;
      expect(await missed(d)).to.equal(1);
      expect(await missed(c)).to.equal(0);
      // Round 3 closes round 2, where c and d were both silent.
      await f.feeds.connect(a).report(ETH_USD, 3, usd(2002));
      const tx3 = f.feeds.connect(b).report(ETH_USD, 3, usd(2002));
      await expect(tx3).to.emit(f.feeds, "ReportMissed").withArgs(ETH_USD, 2, c.address);
      await expect(tx3).to.emit(f.feeds, "ReportMissed").withArgs(ETH_USD, 2, d.address);
      expect(await missed(d)).to.equal(2);
      expect(await missed(c)).to.equal(1);
      expect(await missed(a)).to.equal(0);
    });

    it("keeps the last 32 answers for recentValues, oldest first", async function () {
      const f = await loadFixture(feedFixture);
      await f.feeds.setFeedParams(ETH_USD, params(1, MAX_STALENESS, MAX_DEVIATION_BPS));
      const a = f.reporters[0]!;
      expect(await f.feeds.recentValues(ETH_USD, 8)).to.deep.equal([]);
      for (let r = 1; r <= 35; r++) await f.feeds.connect(a).report(ETH_USD, r, BigInt(r * 10));
      const expected = (from: number, to: number) =>
        Array.from({ length: to - from + 1 }, (_, i) => BigInt((from + i) * 10));
      expect(await f.feeds.recentValues(ETH_USD, 8)).to.deep.equal(expected(28, 35));
      expect(await f.feeds.recentValues(ETH_USD, 1)).to.deep.equal(expected(35, 35));
      expect(await f.feeds.recentValues(ETH_USD, 0)).to.deep.equal([]);
      expect(await f.feeds.recentValues(ETH_USD, 100)).to.deep.equal(expected(4, 35));
      // getRound reaches the same 32 rounds and the open one, nothing else.
      expect((await f.feeds.getRound(ETH_USD, 4)).value).to.equal(40n);
      expect((await f.feeds.getRound(ETH_USD, 36)).roundId).to.equal(36n);
      for (const r of [0, 3, 37]) {
        await expect(f.feeds.getRound(ETH_USD, r))
          .to.be.revertedWithCustomError(f.feeds, "DataFeeds__RoundNotAvailable")
          .withArgs(ETH_USD, r);
      }
    });

    it("reads an open round with a report as open, and a short history as it is", async function () {
      const f = await loadFixture(feedFixture);
      await f.feeds.setFeedParams(ETH_USD, params(1, MAX_STALENESS, MAX_DEVIATION_BPS));
      await f.feeds.connect(f.reporters[0]!).report(ETH_USD, 1, 7n);
      await f.feeds.connect(f.reporters[0]!).report(ETH_USD, 2, 9n);
      expect(await f.feeds.recentValues(ETH_USD, 8)).to.deep.equal([7n, 9n]);
    });
  });

  describe("who may report", function () {
    it("only listed reporters that are active DATA nodes", async function () {
      const f = await loadFixture(feedFixture);
      const [, , , d] = f.reporters as [Wallet, Wallet, Wallet, Wallet];
      await expect(f.feeds.connect(d).report(ETH_USD, 1, 1n))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NotReporter")
        .withArgs(ETH_USD, d.address);
      // Listed, but registered for inference only.
      const inferenceOnly = f.node1;
      await f.feeds.addReporter(ETH_USD, await inferenceOnly.getAddress());
      await expect(f.feeds.connect(inferenceOnly).report(ETH_USD, 1, 1n))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NotDataNode")
        .withArgs(await inferenceOnly.getAddress());
      // Listed and staked, then the stake leaves: no longer active.
      const a = f.reporters[0]!;
      await f.nodes.connect(a).startUnbonding(DEVNET_PARAMS.stake.minStakeData);
      await expect(f.feeds.connect(a).report(ETH_USD, 1, 1n))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NotDataNode")
        .withArgs(a.address);
      await expect(f.feeds.report(id("nope"), 1, 1n))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__UnknownFeed")
        .withArgs(id("nope"));
    });

    it("a reporter added during a round reports from the next round on", async function () {
      const f = await loadFixture(feedFixture);
      const [a, b, c, d] = f.reporters as [Wallet, Wallet, Wallet, Wallet];
      await f.feeds.connect(a).report(ETH_USD, 1, usd(2000));
      await expect(f.feeds.addReporter(ETH_USD, d.address))
        .to.emit(f.feeds, "ReporterAdded")
        .withArgs(ETH_USD, d.address, 3);
      await expect(f.feeds.addReporter(ETH_USD, d.address))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__AlreadyReporter")
        .withArgs(ETH_USD, d.address);
      await expect(f.feeds.addReporter(ETH_USD, ZeroAddress))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__ZeroReporter")
        .withArgs(ETH_USD);
      await expect(f.feeds.connect(d).report(ETH_USD, 1, usd(2000)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NotInRound")
        .withArgs(ETH_USD, 1, d.address);
      await f.feeds.connect(b).report(ETH_USD, 1, usd(2000));
      await f.feeds.connect(c).report(ETH_USD, 1, usd(2000));
      // Not expected in round 1, so not late there either; and never counted missed for it.
      await expect(f.feeds.connect(d).report(ETH_USD, 1, usd(2000)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NotInRound")
        .withArgs(ETH_USD, 1, d.address);
      await f.feeds.connect(d).report(ETH_USD, 2, usd(2000));
      expect((await f.feeds.getRound(ETH_USD, 2)).expected).to.equal(0b1111);
    });

    it("removing a reporter withdraws its open report and frees its slot", async function () {
      const f = await loadFixture(feedFixture);
      const [a, b, c, d, e] = f.reporters as [Wallet, Wallet, Wallet, Wallet, Wallet];
      await f.feeds.addReporter(ETH_USD, d.address);
      await f.feeds.connect(a).report(ETH_USD, 1, usd(9999));
      await f.feeds.connect(b).report(ETH_USD, 1, usd(2000));
      await expect(f.feeds.removeReporter(ETH_USD, a.address))
        .to.emit(f.feeds, "ReporterRemoved")
        .withArgs(ETH_USD, a.address, 0);
      await expect(f.feeds.removeReporter(ETH_USD, a.address))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NotReporter")
        .withArgs(ETH_USD, a.address);
      const open = await f.feeds.getRound(ETH_USD, 1);
      expect(open.reports).to.equal(1);
      expect(open.expected).to.equal(0b1110);
      expect(open.reported).to.equal(0b0010);
      await expect(f.feeds.connect(a).report(ETH_USD, 1, usd(2000)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NotReporter")
        .withArgs(ETH_USD, a.address);
      // The freed slot 0 goes to the next reporter listed, who waits for the next round.
      await expect(f.feeds.addReporter(ETH_USD, e.address))
        .to.emit(f.feeds, "ReporterAdded")
        .withArgs(ETH_USD, e.address, 0);
      await expect(f.feeds.connect(e).report(ETH_USD, 1, usd(2000)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NotInRound")
        .withArgs(ETH_USD, 1, e.address);
      await f.feeds.connect(c).report(ETH_USD, 1, usd(2002));
      await f.feeds.connect(d).report(ETH_USD, 1, usd(2004));
      expect((await f.feeds.latestRound(ETH_USD))[1]).to.equal(usd(2002)); // a's 9999 is gone
      expect((await f.feeds.feed(ETH_USD)).reporters).to.deep.equal([
        e.address,
        b.address,
        c.address,
        d.address,
      ]);
      // Its counters stay on record.
      const sa = await f.feeds.reporterStats(ETH_USD, a.address);
      expect([sa.listed, sa.reports]).to.deep.equal([false, 1n]);
    });

    it("keeps the quorum within the reporters", async function () {
      const f = await loadFixture(feedFixture);
      await expect(f.feeds.removeReporter(ETH_USD, f.reporters[0]!.address))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__InvalidQuorum")
        .withArgs(ETH_USD, 3, 2);
      await expect(f.feeds.setFeedParams(ETH_USD, params(4, MAX_STALENESS, MAX_DEVIATION_BPS)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__InvalidQuorum")
        .withArgs(ETH_USD, 4, 3);
      await expect(f.feeds.setFeedParams(ETH_USD, params(2, 0, MAX_DEVIATION_BPS)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__ZeroMaxStaleness")
        .withArgs(ETH_USD);
      await expect(f.feeds.setFeedParams(ETH_USD, params(2, 60, 0)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__ZeroMaxDeviation")
        .withArgs(ETH_USD);
      await expect(f.feeds.setFeedParams(id("nope"), params(1, 60, 100)))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__UnknownFeed")
        .withArgs(id("nope"));
      await expect(f.feeds.setFeedParams(ETH_USD, params(2, 60, 100)))
        .to.emit(f.feeds, "FeedParamsChanged")
        .withArgs(ETH_USD, [2, 60, 100]);
    });

    it("a quorum lowered to what the open round has answers it at once", async function () {
      const f = await loadFixture(feedFixture);
      const [a, b] = f.reporters as [Wallet, Wallet];
      await f.feeds.connect(a).report(ETH_USD, 1, usd(2000));
      await f.feeds.connect(b).report(ETH_USD, 1, usd(2004));
      // The third reporter is gone; a and b cannot report again in round 1.
      const tx = f.feeds.setFeedParams(ETH_USD, params(2, MAX_STALENESS, MAX_DEVIATION_BPS));
      await expect(tx).to.emit(f.feeds, "FeedParamsChanged");
      await expect(tx)
        .to.emit(f.feeds, "RoundAnswered")
        .withArgs(ETH_USD, 1, usd(2002), BigInt(await time.latest()));
      expect(await f.feeds.latestValue(ETH_USD)).to.equal(usd(2002));
      // A quorum the open round does not meet changes nothing else.
      await f.feeds.connect(a).report(ETH_USD, 2, usd(2010));
      await expect(f.feeds.setFeedParams(ETH_USD, params(3, MAX_STALENESS, MAX_DEVIATION_BPS))).to.not.emit(
        f.feeds,
        "RoundAnswered",
      );
      expect((await f.feeds.getRound(ETH_USD, 2)).reports).to.equal(1);
    });

    it("refuses more than 16 reporters, and reads of unknown feeds", async function () {
      const f = await loadFixture(feedFixture);
      for (const w of f.reporters.slice(3)) await f.feeds.addReporter(ETH_USD, w.address);
      await expect(f.feeds.addReporter(ETH_USD, await f.outsider.getAddress()))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__TooManyReporters")
        .withArgs(ETH_USD, MAX_REPORTERS);
      const unknown = id("nope");
      const calls = [
        () => f.feeds.latestRound(unknown),
        () => f.feeds.latestValue(unknown),
        () => f.feeds.recentValues(unknown, 1),
        () => f.feeds.getRound(unknown, 1),
        () => f.feeds.feed(unknown),
        () => f.feeds.reporterStats(unknown, ZeroAddress),
        () => f.feeds.addReporter(unknown, ZeroAddress),
        () => f.feeds.removeReporter(unknown, ZeroAddress),
      ];
      for (const call of calls) {
        await expect(call())
          .to.be.revertedWithCustomError(f.feeds, "DataFeeds__UnknownFeed")
          .withArgs(unknown);
      }
    });
  });

  describe("properties", function () {
    const runs = Number(process.env.GRADNET_PROPERTY_RUNS?.match(/^\d+$/)?.[0] ?? 60);
    const seed = process.env.GRADNET_PROPERTY_SEED?.trim();

    it("answers with the reference median and flags exactly the reports beyond the threshold", async function () {
      const f = await loadFixture(feedFixture);
      const INT256_MIN = -(1n << 255n);
      const INT256_MAX = (1n << 255n) - 1n;
      // Values near a price (ties and small deviations), anywhere in int256, or mixed.
      const value = fc.oneof(
        fc.bigInt({ min: 199_000n, max: 201_000n }),
        fc.bigInt({ min: -5n, max: 5n }),
        fc.bigInt({ min: INT256_MIN, max: INT256_MAX }),
        fc.constantFrom(INT256_MIN, INT256_MAX, 0n),
      );
      const scenario = fc.record({
        values: fc.array(value, { minLength: 1, maxLength: MAX_REPORTERS }),
        maxDeviationBps: fc.integer({ min: 1, max: 65_535 }),
      });
      let n = 0;
      await fc.assert(
        fc.asyncProperty(scenario, async ({ values, maxDeviationBps }) => {
          const feedId = id(`property feed ${n++}`);
          const reporters = f.reporters.slice(0, values.length);
          await f.feeds.createFeed(
            feedId,
            "property",
            0,
            values.length,
            60,
            maxDeviationBps,
            reporters.map((r) => r.address),
          );
          let last;
          for (const [i, r] of reporters.entries()) {
            last = await f.feeds.connect(r).report(feedId, 1, values[i]!, { gasLimit: 2_000_000 });
          }
          const receipt = await last!.wait();
          const median = referenceMedian(values);
          expect((await f.feeds.latestRound(feedId))[1]).to.equal(median);
          expect(median >= values.reduce((a, b) => (a < b ? a : b))).to.equal(true);
          expect(median <= values.reduce((a, b) => (a > b ? a : b))).to.equal(true);

          const flagged = receipt!.logs
            .map((l) => f.feeds.interface.parseLog(l))
            .filter((p) => p?.name === "ReportDeviated")
            .map((p) => ({ reporter: p!.args.reporter as string, bps: p!.args.deviationBps as bigint }));
          const expected = reporters
            .map((r, i) => ({ reporter: r.address, bps: referenceDeviationBps(values[i]!, median) }))
            .filter((x) => x.bps > BigInt(maxDeviationBps));
          // Events come in slot order, which is the listing order here.
          expect(flagged).to.deep.equal(expected);
        }),
        { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
      );
    });
  });

  it("costs a bounded amount of gas to answer a round of 16 reports", async function () {
    const f = await loadFixture(feedFixture);
    const feedId = id("sixteen");
    await f.feeds.createFeed(
      feedId,
      "sixteen",
      8,
      16,
      60,
      100,
      f.reporters.map((r) => r.address),
    );
    let gasUsed = 0n;
    for (const [i, r] of f.reporters.entries()) {
      const receipt = await (
        await f.feeds.connect(r).report(feedId, 1, BigInt((i * 7919) % 16) * 1000n)
      ).wait();
      gasUsed = receipt!.gasUsed;
    }
    expect((await f.feeds.latestRound(feedId))[0]).to.equal(1n);
    expect(gasUsed < 1_000_000n).to.equal(true, `the answering report used ${gasUsed} gas`);
  });

  describe("FeedTrendConsumer (example dApp)", function () {
    const trendModel = manifest.models.find((m) => m.name === "feed-trend")!;
    const TREND_MODEL_ID = trendModel.sha256;
    const TREND_FEE = BigInt(trendModel.fee);
    const DIRECTION = { Up: 0n, Flat: 1n, Down: 2n } as const;
    const RISING = [2000, 2003.5, 2004, 2010.25, 2012, 2015, 2019, 2020.5];

    interface TrendFixture extends FeedFixture {
      app: FeedTrendConsumer;
    }

    /** ETH/USD answered by one reporter (quorum 1), the feed-trend model registered, the app deployed. */
    async function trendFixture(): Promise<TrendFixture> {
      const f = await loadFixture(feedFixture);
      await f.feeds.setFeedParams(ETH_USD, params(1, MAX_STALENESS, MAX_DEVIATION_BPS));
      const schema = {
        inputs: trendModel.schema.inputs,
        outputs: trendModel.schema.outputs,
      };
      await f.models
        .connect(f.modelOwner)
        .registerModel(TREND_MODEL_ID, "gradnet://models/" + TREND_MODEL_ID, schema, 6, TREND_FEE, 1000);
      const factory = await ethers.getContractFactory("FeedTrendConsumer", f.owner);
      const app = await factory.deploy(
        f.addresses.inferenceHub,
        f.addresses.dataFeeds,
        ETH_USD,
        TREND_MODEL_ID,
      );
      return { ...f, app };
    }

    async function answerRounds(f: FeedFixture, prices: readonly number[]): Promise<void> {
      const first = (await f.feeds.latestRound(ETH_USD))[0] + 1n;
      for (const [i, p] of prices.entries())
        await f.feeds.connect(f.reporters[0]!).report(ETH_USD, first + BigInt(i), usd(p));
    }

    /** The request's inline input, from its InferenceRequested event. */
    async function inputOf(f: Fixture, tx: { wait(): Promise<unknown> }): Promise<string> {
      const receipt = (await tx.wait()) as { logs: { topics: readonly string[]; data: string }[] };
      for (const log of receipt.logs) {
        const parsed = f.hub.interface.parseLog(log);
        if (parsed?.name === "InferenceRequested") return parsed.args.input as string;
      }
      throw new Error("no InferenceRequested event");
    }

    it("sends the feed's last 8 values to the model and records the trend onnxruntime computes", async function () {
      const f = await loadFixture(trendFixture);
      await answerRounds(f, RISING.slice(0, 5));
      await expect(f.app.connect(f.user).requestTrend({ value: TREND_FEE }))
        .to.be.revertedWithCustomError(f.app, "FeedTrend__NotEnoughHistory")
        .withArgs(ETH_USD, 5, 8);
      await answerRounds(f, RISING.slice(5));

      const tx = await f.app.connect(f.user).requestTrend({ value: TREND_FEE });
      const req = await requestFromTx(f, tx);
      await expect(tx)
        .to.emit(f.app, "TrendRequested")
        .withArgs(req.requestId, await f.user.getAddress(), 8);
      expect(req.modelId).to.equal(TREND_MODEL_ID);
      expect(req.callbackGasLimit).to.equal(await f.app.CALLBACK_GAS_LIMIT());

      // The input is the canonical tensor of the feed's values, fixed-point with its decimals.
      const input = await inputOf(f, tx);
      const [prices] = decodeWire(input as `0x${string}`);
      expect(prices!.name).to.equal("prices");
      expect(prices!.dtype).to.equal(1);
      expect(prices!.decimals).to.equal(DECIMALS);
      expect(prices!.shape).to.deep.equal([1, 8]);
      expect(prices!.values).to.deep.equal(RISING.map(usd));

      // Run the real model on that input, as a worker does, and answer with its output.
      const session = await ort.InferenceSession.create(
        path.join(__dirname, "..", "..", "models", trendModel.file),
        SESSION_OPTIONS,
      );
      const spec = { modelId: TREND_MODEL_ID as `0x${string}`, decimals: 6, ...trendModel.schema };
      const { output, outputHash } = await runOne(
        localSession(session),
        spec,
        prepareInputs(spec, decodeWire(input as `0x${string}`)),
      );
      await session.release();
      const outputs = decodeTensors(output);
      const trend = Number((outputs.find((t) => t.name === "trend")!.data as number[])[0]);
      expect(trend).to.be.closeTo(referenceTrend(RISING).trend, 1e-3);

      const fulfil = f.hub.connect(f.node1).fulfill(req, STATUS.Success, output, outputHash);
      await expect(fulfil).to.emit(f.hub, "InferenceFulfilled");
      const r = await f.app.reading(req.requestId);
      expect(r.answered).to.equal(true);
      expect(r.status).to.equal(BigInt(STATUS.Success));
      expect(r.direction).to.equal(DIRECTION.Up);
      expect(r.roundId).to.equal(8n);
      expect(r.outputHash).to.equal(outputHash);
      expect(Number(r.trend) / 1e6).to.be.closeTo(trend, 1e-6);
      expect(r.confidence > 900_000n).to.equal(true);
      await expect(fulfil)
        .to.emit(f.app, "TrendAnswered")
        .withArgs(req.requestId, 8, STATUS.Success, DIRECTION.Up, r.trend, r.confidence);
      const [latestId, latest] = await f.app.latestTrend();
      expect(latestId).to.equal(req.requestId);
      expect(latest.direction).to.equal(DIRECTION.Up);
    });

    it("finds the outputs by name, and a malformed answer does not land", async function () {
      const f = await loadFixture(trendFixture);
      await answerRounds(f, RISING);
      const req = await requestFromTx(f, await f.app.connect(f.user).requestTrend({ value: TREND_FEE }));
      const down = encodeTensors([
        floatTensor("direction", [10_000n, 20_000n, 970_000n]),
        floatTensor("trend", [-12_500_000n], 6, [1, 1]),
      ]);
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.Success, down, keccak256(down)))
        .to.emit(f.app, "TrendAnswered")
        .withArgs(req.requestId, 8, STATUS.Success, DIRECTION.Down, -12_500_000n, 970_000n);

      const req2 = await requestFromTx(f, await f.app.connect(f.user).requestTrend({ value: TREND_FEE }));
      const noTrend = encodeTensors([floatTensor("direction", [1n, 2n, 3n])]);
      await expect(f.hub.connect(f.node1).fulfill(req2, STATUS.Success, noTrend, keccak256(noTrend)))
        .to.emit(f.hub, "InferenceFulfilled")
        .withArgs(
          req2.requestId,
          await f.node1.getAddress(),
          STATUS.Success,
          keccak256(noTrend),
          anyUint,
          CALLBACK.Reverted,
          noTrend,
        );
      expect((await f.app.reading(req2.requestId)).answered).to.equal(false);
      // The latest reading is still the good one.
      expect((await f.app.latestTrend())[0]).to.equal(req.requestId);
    });

    it("refuses to ask about a stale feed, records error answers, and only its owner takes refunds", async function () {
      const f = await loadFixture(trendFixture);
      await expect(f.app.connect(f.user).requestTrend({ value: TREND_FEE }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__NoData")
        .withArgs(ETH_USD);
      await answerRounds(f, RISING);
      const updatedAt = (await f.feeds.latestRound(ETH_USD))[3];
      await time.increase(MAX_STALENESS + 1);
      await expect(f.app.connect(f.user).requestTrend({ value: TREND_FEE }))
        .to.be.revertedWithCustomError(f.feeds, "DataFeeds__Stale")
        .withArgs(ETH_USD, updatedAt, MAX_STALENESS);
      await answerRounds(f, [2021]);

      const req = await requestFromTx(f, await f.app.connect(f.user).requestTrend({ value: TREND_FEE }));
      const reason = toUtf8Bytes("model failed");
      await expect(f.hub.connect(f.node1).fulfill(req, STATUS.ModelFailed, reason, keccak256(reason)))
        .to.emit(f.app, "TrendAnswered")
        .withArgs(req.requestId, 9, STATUS.ModelFailed, DIRECTION.Flat, 0, 0);
      const r = await f.app.reading(req.requestId);
      expect([r.answered, r.status]).to.deep.equal([true, BigInt(STATUS.ModelFailed)]);
      expect((await f.app.latestTrend())[0]).to.equal(0n);
      await expect(f.app.connect(f.user).withdrawRefunds(f.addresses.settlement))
        .to.be.revertedWithCustomError(f.app, "FeedTrend__OnlyOwner")
        .withArgs(await f.user.getAddress());
      await expect(f.app.connect(f.owner).withdrawRefunds(f.addresses.settlement)).to.changeEtherBalances(
        [f.settlement, f.owner],
        [-TREND_FEE, TREND_FEE],
      );
    });
  });
});
