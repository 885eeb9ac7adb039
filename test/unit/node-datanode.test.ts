import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import pino from "pino";
import { ContractFunctionRevertedError, encodeErrorResult, keccak256, stringToBytes, type Hex } from "viem";
import { DEFAULT_DEPLOYMENTS_DIR, dataFeedsAbi, feedIdOf } from "../../sdk";
import { ConfigError } from "../../node/config";
import { parseDataNodeConfig } from "../../node/dataConfig";
import {
  FeedFetchError,
  FeedReporter,
  createDataNodeMetrics,
  fetchFeedValue,
  type DataFeedsChain,
} from "../../node/dataNode";
import {
  FeedValueError,
  chooseRound,
  extractFeedValue,
  parseJsonPath,
  readJsonPath,
  toFeedValue,
  type FeedSource,
  type ReporterView,
} from "../../node/feedSource";

const KEY = `0x${"ab".repeat(32)}` as Hex;
const ETH_USD = feedIdOf("ETH/USD");

describe("feed ids", () => {
  test("a feed's id is keccak256 of its symbol", () => {
    assert.equal(feedIdOf("ETH/USD"), keccak256(stringToBytes("ETH/USD")));
    assert.notEqual(feedIdOf("ETH/USD"), feedIdOf("eth/usd"));
  });
});

describe("JSON paths", () => {
  const doc = {
    data: { price: "2345.67", items: [{ p: 1 }, { p: 2.5 }] },
    ethereum: { usd: 2345.67 },
    "0": "zero",
  };

  test("dots for keys, [n] or a number for array elements, empty for the whole answer", () => {
    assert.deepEqual(parseJsonPath("data.items[1].p"), ["data", "items", 1, "p"]);
    assert.deepEqual(parseJsonPath("[0][2].close"), [0, 2, "close"]);
    assert.deepEqual(parseJsonPath("  "), []);
    assert.equal(readJsonPath(doc, "data.price"), "2345.67");
    assert.equal(readJsonPath(doc, "ethereum.usd"), 2345.67);
    assert.equal(readJsonPath(doc, "data.items[1].p"), 2.5);
    assert.equal(readJsonPath(doc, "data.items.0.p"), 1);
    assert.equal(readJsonPath(doc, "0"), "zero");
    assert.equal(readJsonPath([[1, 2], [3]], "[1][0]"), 3);
    assert.equal(readJsonPath(42, ""), 42);
  });

  test("a missing step is named in the error", () => {
    assert.throws(
      () => readJsonPath(doc, "data.prices", "ETH/USD"),
      (e: unknown) =>
        e instanceof FeedValueError && e.message === "feed ETH/USD: the answer has nothing at data.prices",
    );
    assert.throws(
      () => readJsonPath(doc, "data.items[5].p"),
      (e: unknown) => e instanceof FeedValueError && /nothing at data.items\[5\]$/.test(e.message),
    );
    assert.throws(() => readJsonPath(doc, "ethereum.usd.x"), FeedValueError);
    assert.throws(() => readJsonPath(doc, "toString"), FeedValueError, "inherited keys are not data");
    for (const bad of ["a..b", "a[x]", "a]", "."]) {
      assert.throws(() => readJsonPath(doc, bad), FeedValueError, bad);
    }
  });
});

describe("scaling a value to the feed's decimals", () => {
  test("decimal strings and JSON numbers scale exactly", () => {
    assert.equal(toFeedValue("2345.67", 8), 234_567_000_000n);
    assert.equal(toFeedValue(2345.67, 8), 234_567_000_000n);
    assert.equal(toFeedValue(0.1, 18), 100_000_000_000_000_000n, "no binary drift");
    assert.equal(toFeedValue(" -12.5 ", 2), -1250n);
    assert.equal(toFeedValue("1e-7", 8), 10n);
    assert.equal(toFeedValue("1.5E3", 0), 1500n);
    assert.equal(toFeedValue(1e21, 0), 10n ** 21n);
    assert.equal(toFeedValue(".5", 1), 5n);
    assert.equal(toFeedValue("7.", 1), 70n);
    assert.equal(toFeedValue("+3", 0), 3n);
    assert.equal(toFeedValue("123456789012345678901234567890.123", 2), 12345678901234567890123456789012n);
  });

  test("extra digits round half to even", () => {
    assert.equal(toFeedValue("0.125", 2), 12n);
    assert.equal(toFeedValue("0.135", 2), 14n);
    assert.equal(toFeedValue("0.1251", 2), 13n);
    assert.equal(toFeedValue("-0.125", 2), -12n);
    assert.equal(toFeedValue("-0.135", 2), -14n);
    assert.equal(toFeedValue("2.5", 0), 2n);
    assert.equal(toFeedValue("3.5", 0), 4n);
    assert.equal(toFeedValue("1e-30", 18), 0n);
  });

  test("anything that is not a finite decimal number is a FeedValueError", () => {
    for (const bad of ["abc", "", ".", "-", "1,5", "0x10", "1e", "NaN", "Infinity", null, true, {}, [1]]) {
      assert.throws(() => toFeedValue(bad, 8, "ETH/USD"), FeedValueError, JSON.stringify(bad));
    }
    for (const bad of [NaN, Infinity, -Infinity]) assert.throws(() => toFeedValue(bad, 8), FeedValueError);
    assert.throws(() => toFeedValue("1e500", 8), /out of range/);
    assert.throws(() => toFeedValue(`1${"0".repeat(80)}`, 0), /does not fit int256/);
    assert.throws(() => toFeedValue("1", 19), /decimals/);
  });

  test("property: a fixed-point value written out in decimal reads back as itself", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }),
        fc.integer({ min: 0, max: 18 }),
        fc.integer({ min: 0, max: 5 }),
        (v, decimals, extraZeros) => {
          const abs = v < 0n ? -v : v;
          const digits = abs.toString().padStart(decimals + 1, "0");
          const text =
            (v < 0n ? "-" : "") +
            (decimals === 0
              ? digits
              : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}${"0".repeat(extraZeros)}`);
          assert.equal(toFeedValue(text, decimals), v);
          // The same number in exponent form.
          assert.equal(toFeedValue(`${v}e-${decimals}`, decimals), v);
        },
      ),
    );
  });

  test("a source's answer: JSON, path, value", () => {
    const source = { name: "ETH/USD", jsonPath: "data.price" };
    assert.equal(extractFeedValue('{"data":{"price":"2000.5"}}', source, 8), 200_050_000_000n);
    assert.throws(
      () => extractFeedValue("<html>rate limited</html>", source, 8),
      (e: unknown) => e instanceof FeedValueError && /not JSON/.test(e.message),
    );
    assert.throws(() => extractFeedValue('{"data":{}}', source, 8), /nothing at data.price/);
  });
});

describe("round choice", () => {
  const round = (roundId: bigint, expected: number, reported: number, updatedAt = 0n) => ({
    roundId,
    expected,
    reported,
    updatedAt,
  });
  const view = (over: Partial<ReporterView>): ReporterView => ({
    latestRoundId: 4n,
    latest: round(4n, 0b111, 0b011, 1000n),
    open: round(5n, 0b111, 0),
    listed: true,
    slot: 2,
    nowSeconds: 1005n,
    ...over,
  });

  test("the first round of a new feed is round 1", () => {
    assert.deepEqual(
      chooseRound(view({ latestRoundId: 0n, latest: undefined, open: round(1n, 0b111, 0) }), 10n),
      {
        kind: "open",
        roundId: 1n,
      },
    );
  });

  test("a reporter that missed the last answered round reports there late while it is fresh", () => {
    assert.deepEqual(chooseRound(view({}), 10n), { kind: "late", roundId: 4n });
    // answered 5 s ago, window 5 s: still fresh; 6 s: too old, so the open round instead
    assert.deepEqual(chooseRound(view({}), 5n), { kind: "late", roundId: 4n });
    assert.deepEqual(chooseRound(view({ nowSeconds: 1006n }), 5n), { kind: "open", roundId: 5n });
  });

  test("otherwise the open round, once", () => {
    const reportedLatest = round(4n, 0b111, 0b111, 1000n);
    assert.deepEqual(chooseRound(view({ latest: reportedLatest }), 10n), { kind: "open", roundId: 5n });
    assert.deepEqual(chooseRound(view({ latest: reportedLatest, open: round(5n, 0b111, 0b100) }), 10n), {
      kind: "wait",
      reason: "reported",
    });
  });

  test("a reporter listed mid-round waits for the next round, and an unlisted one waits", () => {
    const addedLater = view({
      slot: 3,
      latest: round(4n, 0b111, 0b011, 1000n),
      open: round(5n, 0b111, 0b001),
    });
    assert.deepEqual(chooseRound(addedLater, 10n), { kind: "wait", reason: "not-expected" });
    assert.deepEqual(chooseRound(view({ listed: false }), 10n), { kind: "wait", reason: "not-listed" });
  });
});

describe("data node config", () => {
  const feeds = JSON.stringify([
    { symbol: "ETH/USD", url: "https://prices.example.org/eth", jsonPath: "data.price" },
  ]);

  test("DATA_FEEDS and the documented defaults", () => {
    const c = parseDataNodeConfig({ DATA_PRIVATE_KEY: KEY, DATA_FEEDS: feeds }, "/srv/data");
    assert.deepEqual(c, {
      rpcUrl: "http://127.0.0.1:8545",
      deploymentsDir: DEFAULT_DEPLOYMENTS_DIR,
      privateKey: KEY,
      feeds: [
        {
          name: "ETH/USD",
          feedId: ETH_USD,
          url: "https://prices.example.org/eth",
          jsonPath: "data.price",
          decimals: undefined,
          intervalMs: 10_000,
          timeoutMs: undefined,
          lateWindowMs: 10_000,
          headers: {},
        },
      ],
      fetchTimeoutMs: 5000,
      maxBackoffMs: 60_000,
      metricsHost: "127.0.0.1",
      metricsPort: undefined,
      logLevel: "info",
    });
  });

  test("DATA_FEEDS_FILE, relative to cwd, as a list or { feeds }", () => {
    const files: Record<string, string> = {
      "/srv/data/feeds.json": JSON.stringify({
        feeds: [
          {
            feedId: ETH_USD.toUpperCase().replace("0X", "0x"),
            url: "http://127.0.0.1:9000/",
            jsonPath: "",
            decimals: 8,
            intervalMs: 500,
            timeoutMs: 200,
            lateWindowMs: 0,
            headers: { authorization: "Bearer x" },
          },
        ],
      }),
    };
    const c = parseDataNodeConfig(
      {
        DATA_PRIVATE_KEY: KEY,
        DATA_FEEDS_FILE: "feeds.json",
        DEPLOYMENTS_DIR: "deps",
        DATA_METRICS_PORT: "0",
      },
      "/srv/data",
      (f) => files[f] ?? assert.fail(`read ${f}`),
    );
    assert.equal(c.deploymentsDir, path.join("/srv/data", "deps"));
    assert.equal(c.metricsPort, 0);
    assert.deepEqual(c.feeds[0], {
      name: ETH_USD,
      feedId: ETH_USD,
      url: "http://127.0.0.1:9000/",
      jsonPath: "",
      decimals: 8,
      intervalMs: 500,
      timeoutMs: 200,
      lateWindowMs: 0,
      headers: { authorization: "Bearer x" },
    });
  });

  test("errors name the field, down to the feed entry, and never show the key", () => {
    const field = (env: Record<string, string>, readFile?: (f: string) => string) => {
      try {
        parseDataNodeConfig(env, "/srv", readFile);
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        return { field: e.field, message: e.message };
      }
      return assert.fail("no error");
    };
    assert.equal(field({ DATA_FEEDS: feeds }).field, "DATA_PRIVATE_KEY");
    const badKey = field({ DATA_PRIVATE_KEY: "0x1234", DATA_FEEDS: feeds });
    assert.equal(badKey.field, "DATA_PRIVATE_KEY");
    assert.ok(!badKey.message.includes("0x1234"));
    assert.equal(field({ DATA_PRIVATE_KEY: KEY }).field, "DATA_FEEDS");
    assert.match(
      field({ DATA_PRIVATE_KEY: KEY, DATA_FEEDS: feeds, DATA_FEEDS_FILE: "f" }).message,
      /both set/,
    );
    assert.match(field({ DATA_PRIVATE_KEY: KEY, DATA_FEEDS: "[{" }).message, /DATA_FEEDS is not JSON/);
    assert.equal(field({ DATA_PRIVATE_KEY: KEY, DATA_FEEDS: "[]" }).field, "DATA_FEEDS");
    const entry = (f: object) => field({ DATA_PRIVATE_KEY: KEY, DATA_FEEDS: JSON.stringify([f]) });
    const ok = { symbol: "ETH/USD", url: "https://x.example/", jsonPath: "p" };
    assert.equal(entry({ ...ok, url: "ftp://x.example/" }).field, "DATA_FEEDS[0].url");
    assert.equal(entry({ ...ok, decimals: 19 }).field, "DATA_FEEDS[0].decimals");
    assert.equal(entry({ ...ok, intervalMs: 10 }).field, "DATA_FEEDS[0].intervalMs");
    assert.equal(entry({ ...ok, feedId: "0x12" }).field, "DATA_FEEDS[0].feedId");
    assert.equal(entry({ ...ok, pth: "p" }).field, "DATA_FEEDS[0]", "unknown keys are typos");
    assert.match(entry({ url: ok.url, jsonPath: "p" }).message, /needs a symbol or a feedId/);
    assert.match(
      field({ DATA_PRIVATE_KEY: KEY, DATA_FEEDS: JSON.stringify([ok, { ...ok, url: "https://y.example/" }]) })
        .message,
      /DATA_FEEDS\[1\] feed ETH\/USD is listed twice/,
    );
    assert.equal(
      field({ DATA_PRIVATE_KEY: KEY, DATA_FEEDS: feeds, DATA_METRICS_PORT: "70000" }).field,
      "DATA_METRICS_PORT",
    );
    const unreadable = field({ DATA_PRIVATE_KEY: KEY, DATA_FEEDS_FILE: "nope.json" }, () => {
      throw new Error("ENOENT: no such file");
    });
    assert.equal(unreadable.field, "DATA_FEEDS_FILE");
    assert.match(unreadable.message, /ENOENT/);
  });
});

describe("fetching a source over HTTP", () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === "/price")
        res.writeHead(200, { "content-type": "application/json" }).end('{"usd":"2001.25"}');
      else if (req.url === "/html") res.writeHead(200).end("<html></html>");
      else if (req.url === "/slow") setTimeout(() => res.writeHead(200).end('{"usd":1}'), 2000);
      else if (req.url === "/auth")
        res.writeHead(req.headers.authorization === "Bearer t" ? 200 : 401).end('{"usd":"1"}');
      else res.writeHead(503).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const source = (p: string, headers: Record<string, string> = {}): FeedSource => ({
    name: "ETH/USD",
    feedId: ETH_USD,
    url: base + p,
    jsonPath: "usd",
    decimals: undefined,
    intervalMs: 1000,
    timeoutMs: undefined,
    lateWindowMs: 1000,
    headers,
  });

  test("reads and scales the value", async () => {
    assert.equal(await fetchFeedValue(source("/price"), 8, 1000), 200_125_000_000n);
    assert.equal(await fetchFeedValue(source("/auth", { authorization: "Bearer t" }), 0, 1000), 1n);
  });

  test("HTTP errors, timeouts and refused connections are FeedFetchErrors; a bad answer a FeedValueError", async () => {
    await assert.rejects(fetchFeedValue(source("/down"), 8, 1000), (e: unknown) => {
      return e instanceof FeedFetchError && e.status === 503 && /HTTP 503/.test(e.message);
    });
    await assert.rejects(fetchFeedValue(source("/auth"), 8, 1000), (e: unknown) => {
      return e instanceof FeedFetchError && e.status === 401;
    });
    await assert.rejects(fetchFeedValue(source("/slow"), 8, 100), /no answer within 100 ms/);
    await assert.rejects(
      fetchFeedValue({ ...source(""), url: "http://127.0.0.1:1/" }, 8, 1000),
      (e: unknown) => e instanceof FeedFetchError && e.status === undefined,
    );
    await assert.rejects(fetchFeedValue(source("/html"), 8, 1000), FeedValueError);
  });
});

describe("FeedReporter against a fake chain", () => {
  const silent = pino({ level: "silent" });
  const source: FeedSource = {
    name: "ETH/USD",
    feedId: ETH_USD,
    url: "http://unused.invalid/",
    jsonPath: "",
    decimals: 8,
    intervalMs: 1000,
    timeoutMs: undefined,
    lateWindowMs: 1000,
    headers: {},
  };
  const revert = (errorName: string, args: readonly unknown[]) =>
    new ContractFunctionRevertedError({
      abi: dataFeedsAbi,
      data: encodeErrorResult({ abi: dataFeedsAbi, errorName, args } as never),
      functionName: "report",
    });

  /** One reporter in slot 0 of three; rounds move when `answer()` is called. */
  function fakeChain() {
    const state = { latest: 0n, reportedOpen: false, reportedLatest: true };
    const sent: string[] = [];
    const failures: Error[] = [];
    const chain: DataFeedsChain = {
      reporter: "0x00000000000000000000000000000000000000d1",
      feed: async () => ({ description: "ETH / USD", decimals: 8, quorum: 3, reporters: [] }),
      reporterView: async () => ({
        latestRoundId: state.latest,
        latest:
          state.latest === 0n
            ? undefined
            : {
                roundId: state.latest,
                expected: 0b111,
                reported: state.reportedLatest ? 0b111 : 0b110,
                updatedAt: 100n,
              },
        open: {
          roundId: state.latest + 1n,
          expected: 0b111,
          reported: state.reportedOpen ? 0b001 : 0,
          updatedAt: 0n,
        },
        listed: true,
        slot: 0,
        nowSeconds: 100n,
      }),
      isDataNode: async () => true,
      async report(_feedId, roundId, value) {
        const failure = failures.shift();
        if (failure !== undefined) throw failure;
        sent.push(`${roundId}:${value}`);
        if (roundId === state.latest + 1n) state.reportedOpen = true;
        else state.reportedLatest = true;
        return "0x01";
      },
    };
    const answer = (reportedByUs: boolean) => {
      state.latest += 1n;
      state.reportedLatest = reportedByUs;
      state.reportedOpen = false;
    };
    return { chain, state, sent, failures, answer };
  }

  const reporterOn = (chain: DataFeedsChain, fetches: { n: number }) =>
    new FeedReporter({
      source,
      decimals: 8,
      chain,
      fetchTimeoutMs: 1000,
      maxBackoffMs: 1000,
      logger: silent,
      metrics: createDataNodeMetrics({ defaultMetrics: false }),
      fetchValue: async () => {
        fetches.n += 1;
        return 200_000_000_000n + BigInt(fetches.n);
      },
    });

  test("reports once per round, fetching only when there is a round to report", async () => {
    const fake = fakeChain();
    const fetches = { n: 0 };
    const r = reporterOn(fake.chain, fetches);
    assert.equal(await r.tick(), "open");
    assert.equal(await r.tick(), "wait");
    assert.equal(fetches.n, 1);
    fake.answer(true);
    assert.equal(await r.tick(), "open");
    fake.answer(false); // answered without us: we report late first, then in the open round
    assert.equal(await r.tick(), "late");
    assert.equal(await r.tick(), "open");
    assert.deepEqual(fake.sent, ["1:200000000001", "2:200000000002", "2:200000000003", "3:200000000004"]);
    const stats = r.stats();
    assert.deepEqual([stats.open, stats.late, stats.already, stats.lastRoundId], [3, 1, 0, 3n]);
  });

  test("'already reported' is success, and a round that moved is read again once", async () => {
    const fake = fakeChain();
    const fetches = { n: 0 };
    const r = reporterOn(fake.chain, fetches);
    fake.failures.push(revert("DataFeeds__AlreadyReported", [ETH_USD, 1n, fake.chain.reporter]));
    assert.equal(await r.tick(), "already");
    fake.failures.push(revert("DataFeeds__WrongRound", [ETH_USD, 1n, 2n]));
    assert.equal(await r.tick(), "open");
    assert.equal(fetches.n, 2, "the retry reuses the value just fetched");
    fake.failures.push(
      revert("DataFeeds__WrongRound", [ETH_USD, 2n, 3n]),
      revert("DataFeeds__WrongRound", [ETH_USD, 2n, 3n]),
    );
    fake.answer(true);
    await assert.rejects(r.tick(), (e: unknown) => e instanceof ContractFunctionRevertedError);
    fake.failures.push(revert("DataFeeds__NotDataNode", [fake.chain.reporter]));
    await assert.rejects(r.tick(), /DataFeeds__NotDataNode/);
    assert.equal(r.stats().already, 1);
  });
});
