import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import { DEFAULT_DEPLOYMENTS_DIR, INFERENCE_QUEUE } from "../../sdk";
import {
  ConfigError,
  DEFAULT_MAX_MODEL_BYTES,
  defaultConfirmations,
  defaultPublicUrl,
  parseConfig,
  resolveChainSettings,
} from "../../node/config";

describe("relayer config", () => {
  test("an empty environment gives the documented defaults", () => {
    const c = parseConfig({}, "/srv/relayer");
    assert.deepEqual(c, {
      rpcUrl: "http://127.0.0.1:8545",
      redisUrl: "redis://127.0.0.1:6379",
      deploymentsDir: DEFAULT_DEPLOYMENTS_DIR,
      confirmations: undefined,
      pollIntervalMs: 500,
      logChunkBlocks: 2000,
      startBlock: undefined,
      maxBatch: 32,
      queueName: INFERENCE_QUEUE,
      httpHost: "127.0.0.1",
      httpPort: 8080,
      publicUrl: undefined,
      storeDir: path.join("/srv/relayer", ".gradnet", "store"),
      maxModelBytes: DEFAULT_MAX_MODEL_BYTES,
      logLevel: "info",
    });
    assert.equal(DEFAULT_MAX_MODEL_BYTES, 64 * 1024 * 1024);
  });

  test("every variable is read, typed and trimmed; relative paths resolve against cwd", () => {
    const c = parseConfig(
      {
        RPC_URL: "https://rpc.example.org/v1",
        REDIS_URL: "rediss://user:pw@redis.example.org:6380/2",
        DEPLOYMENTS_DIR: "deploys",
        CONFIRMATIONS: "12",
        POLL_INTERVAL_MS: " 2000 ",
        LOG_CHUNK_BLOCKS: "500",
        START_BLOCK: "123456789012",
        MAX_BATCH: "8",
        QUEUE_NAME: "gradnet-test_1",
        HTTP_HOST: "0.0.0.0",
        HTTP_PORT: "0",
        PUBLIC_URL: "https://relayer.example.org/",
        STORE_DIR: "/var/lib/gradnet",
        MAX_MODEL_BYTES: "1048576",
        LOG_LEVEL: "debug",
      },
      "/srv/relayer",
    );
    assert.equal(c.rpcUrl, "https://rpc.example.org/v1");
    assert.equal(c.redisUrl, "rediss://user:pw@redis.example.org:6380/2");
    assert.equal(c.deploymentsDir, "/srv/relayer/deploys");
    assert.equal(c.confirmations, 12);
    assert.equal(c.pollIntervalMs, 2000);
    assert.equal(c.logChunkBlocks, 500);
    assert.equal(c.startBlock, 123456789012n);
    assert.equal(c.maxBatch, 8);
    assert.equal(c.queueName, "gradnet-test_1");
    assert.equal(c.httpHost, "0.0.0.0");
    assert.equal(c.httpPort, 0);
    assert.equal(c.publicUrl, "https://relayer.example.org", "trailing slash dropped");
    assert.equal(c.storeDir, "/var/lib/gradnet");
    assert.equal(c.maxModelBytes, 1048576);
    assert.equal(c.logLevel, "debug");
  });

  test("blank variables fall back to their defaults", () => {
    const c = parseConfig({ HTTP_PORT: "", CONFIRMATIONS: "  ", LOG_LEVEL: "" });
    assert.equal(c.httpPort, 8080);
    assert.equal(c.confirmations, undefined);
    assert.equal(c.logLevel, "info");
  });

  const bad: [string, string, RegExp][] = [
    ["HTTP_PORT", "eighty", /HTTP_PORT.*integer.*"eighty"/],
    ["HTTP_PORT", "70000", /HTTP_PORT/],
    ["CONFIRMATIONS", "-1", /CONFIRMATIONS/],
    ["POLL_INTERVAL_MS", "1.5", /POLL_INTERVAL_MS/],
    ["LOG_CHUNK_BLOCKS", "0", /LOG_CHUNK_BLOCKS/],
    ["MAX_BATCH", "0", /MAX_BATCH/],
    ["START_BLOCK", "latest", /START_BLOCK.*block number/],
    ["RPC_URL", "not a url", /RPC_URL.*URL/],
    ["RPC_URL", "ws://127.0.0.1:8546", /RPC_URL.*http/],
    ["REDIS_URL", "http://127.0.0.1:6379", /REDIS_URL.*redis:\/\//],
    ["PUBLIC_URL", "relayer.example.org", /PUBLIC_URL/],
    ["QUEUE_NAME", "has:colon", /QUEUE_NAME/],
    ["MAX_MODEL_BYTES", "lots", /MAX_MODEL_BYTES/],
    ["LOG_LEVEL", "loud", /LOG_LEVEL/],
    ["OFFCHAIN_NODE_PRIVATE_KEY", "0x1234", /OFFCHAIN_NODE_PRIVATE_KEY.*private key/],
    ["BATCH_MAX_LEAVES", "0", /BATCH_MAX_LEAVES/],
    ["BATCH_MAX_WAIT_MS", "-5", /BATCH_MAX_WAIT_MS/],
  ];
  for (const [field, value, pattern] of bad) {
    test(`${field}=${JSON.stringify(value)} is refused with an error naming ${field}`, () => {
      assert.throws(
        () => parseConfig({ [field]: value }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.field, field);
          assert.equal(err.code, "CONFIG_INVALID");
          assert.match(err.message, pattern);
          return true;
        },
      );
    });
  }

  test("OFFCHAIN_NODE_PRIVATE_KEY turns off-chain inference on, with its batch policy; its value is never shown", () => {
    const key = `0x${"cd".repeat(32)}`;
    assert.equal(parseConfig({ BATCH_MAX_LEAVES: "8" }).offchain, undefined);
    assert.deepEqual(parseConfig({ OFFCHAIN_NODE_PRIVATE_KEY: ` ${key} ` }, "/srv/relayer").offchain, {
      privateKey: key,
      maxLeaves: 64,
      maxWaitMs: 5000,
      modelCacheDir: path.join("/srv/relayer", ".gradnet", "offchain-models"),
    });
    assert.deepEqual(
      parseConfig(
        {
          OFFCHAIN_NODE_PRIVATE_KEY: key,
          BATCH_MAX_LEAVES: "3",
          BATCH_MAX_WAIT_MS: "250",
          OFFCHAIN_MODEL_CACHE_DIR: "cache",
        },
        "/srv/relayer",
      ).offchain,
      { privateKey: key, maxLeaves: 3, maxWaitMs: 250, modelCacheDir: "/srv/relayer/cache" },
    );
    assert.throws(
      () => parseConfig({ OFFCHAIN_NODE_PRIVATE_KEY: `${key}0` }),
      (err: unknown) => err instanceof ConfigError && !err.message.includes(key),
    );
  });

  test("confirmations default to 0 on the devnet and 2 elsewhere; an explicit value wins", () => {
    assert.equal(defaultConfirmations(31337), 0);
    assert.equal(defaultConfirmations(1), 2);
    assert.equal(
      resolveChainSettings({ confirmations: undefined, startBlock: undefined }, 31337, undefined)
        .confirmations,
      0,
    );
    assert.equal(
      resolveChainSettings({ confirmations: undefined, startBlock: undefined }, 8453, 10).confirmations,
      2,
    );
    assert.equal(
      resolveChainSettings({ confirmations: 5, startBlock: undefined }, 31337, undefined).confirmations,
      5,
    );
  });

  test("START_BLOCK defaults to the deployment block, else 0; an explicit value wins", () => {
    assert.equal(
      resolveChainSettings({ confirmations: 0, startBlock: undefined }, 1, 4242).startBlock,
      4242n,
    );
    assert.equal(
      resolveChainSettings({ confirmations: 0, startBlock: undefined }, 1, undefined).startBlock,
      0n,
    );
    assert.equal(resolveChainSettings({ confirmations: 0, startBlock: 7n }, 1, 4242).startBlock, 7n);
  });

  test("the default public URL is http://HTTP_HOST:HTTP_PORT", () => {
    assert.equal(defaultPublicUrl("127.0.0.1", 8080), "http://127.0.0.1:8080");
    assert.equal(defaultPublicUrl("relayer.local", 80), "http://relayer.local:80");
    assert.equal(
      defaultPublicUrl("0.0.0.0", 8080),
      "http://127.0.0.1:8080",
      "a wildcard host is not fetchable",
    );
    assert.equal(defaultPublicUrl("::1", 8080), "http://[::1]:8080");
  });
});
