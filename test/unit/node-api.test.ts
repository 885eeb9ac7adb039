import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { onnx } from "onnx-proto";
import pino from "pino";
import { encodeAbiParameters, getAddress, stringToHex, type Hex } from "viem";
import { encodeOutput, type RequestedLog } from "../../sdk";
import { buildApi, type ApiDeps } from "../../node/api";
import type { FulfilledLog, HubReader, RefundedLog } from "../../node/chain";
import { createMetrics } from "../../node/metrics";
import { ModelStore } from "../../node/store";
import type { WatcherStats } from "../../node/watcher";

const IRIS = readFileSync(path.join(__dirname, "..", "..", "models", "iris-mlp.onnx"));
const IRIS_SHA256 = "0x" + createHash("sha256").update(IRIS).digest("hex");
const PUBLIC_URL = "http://relayer.test:8080";
const REQUESTER = getAddress("0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
const NODE = getAddress("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
const MODEL_ID = IRIS_SHA256 as Hex;
const tx = (n: number) => `0x${n.toString(16).padStart(64, "0")}` as Hex;

function externalDataModel(): Buffer {
  return Buffer.from(
    onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: "", version: 17 }],
        graph: {
          name: "g",
          node: [{ opType: "Add", input: ["x", "w"], output: ["y"] }],
          initializer: [
            { name: "w", dataType: 1, dims: [1], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL },
          ],
          input: [{ name: "x" }],
          output: [{ name: "y" }],
        },
      }),
    ).finish(),
  );
}

function requestedLog(requestId: bigint, inputIsRef = false): RequestedLog {
  return {
    request: {
      requestId,
      modelId: MODEL_ID,
      requester: REQUESTER,
      callbackGasLimit: 100_000,
      deadline: 1_900_000_000n,
      fee: 10n ** 15n,
      inputHash: `0x${"11".repeat(32)}`,
      inputIsRef,
      redundancy: 1,
    },
    input: inputIsRef ? stringToHex("http://store.test/inputs/abc") : "0x1234",
    blockNumber: 7n,
    txHash: tx(7),
    logIndex: 0,
  };
}

/** A hub whose requests the test sets up. */
class FakeHub implements HubReader {
  readonly hub = getAddress("0x0000000000000000000000000000000000000f10");
  head: bigint | Error = 20n;
  states = new Map<bigint, number>();
  requested = new Map<bigint, RequestedLog>();
  fulfilled = new Map<bigint, FulfilledLog>();
  refunded = new Map<bigint, RefundedLog>();
  broken = false;

  async getBlockNumber() {
    if (this.head instanceof Error) throw this.head;
    return this.head;
  }
  async getRequestedLogs() {
    return [];
  }
  async getRequestState(id: bigint) {
    if (this.broken) throw new Error("ECONNREFUSED 127.0.0.1:8545");
    return this.states.get(id) ?? 0;
  }
  async findRequested(id: bigint) {
    return this.requested.get(id);
  }
  async findFulfilled(id: bigint) {
    return this.fulfilled.get(id);
  }
  async findRefunded(id: bigint) {
    return this.refunded.get(id);
  }
  async findReleased() {
    return undefined;
  }
}

function stats(over: Partial<WatcherStats> = {}): WatcherStats {
  return {
    running: true,
    head: 20n,
    checkpoint: 18n,
    lagBlocks: 2n,
    blocksProcessed: 19,
    requestsQueued: 3,
    jobsQueued: 3,
    rpcErrors: 0,
    queueErrors: 0,
    consecutiveFailures: 0,
    lastError: undefined,
    checkpointAhead: false,
    ...over,
  };
}

interface Harness {
  app: FastifyInstance;
  hub: FakeHub;
  redisUp: { value: boolean };
  watcher: { stats: WatcherStats };
  metrics: ReturnType<typeof createMetrics>;
}

async function harness(dir: string, over: Partial<ApiDeps> = {}): Promise<Harness> {
  const hub = new FakeHub();
  const redisUp = { value: true };
  const watcher = { stats: stats() };
  const metrics = createMetrics({ defaultMetrics: false });
  const store = new ModelStore(dir);
  await store.init();
  const app = await buildApi({
    chainId: 31337,
    reader: hub,
    store,
    queue: {
      async getJobCounts() {
        if (!redisUp.value) throw new Error("redis down");
        return { waiting: 3, active: 1, completed: 5, failed: 0, delayed: 2 };
      },
    },
    redis: {
      async ping() {
        if (!redisUp.value) throw new Error("redis down");
        return "PONG";
      },
    },
    watcher,
    metrics,
    logger: pino({ level: "silent" }),
    maxModelBytes: 64 * 1024,
    publicUrl: () => PUBLIC_URL,
    probeTimeoutMs: 200,
    ...over,
  });
  return { app, hub, redisUp, watcher, metrics };
}

function assertError(
  res: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
  status: number,
  code?: string,
) {
  assert.equal(res.statusCode, status);
  assert.match(String(res.headers["content-type"]), /application\/json/);
  const body = res.json() as { error: unknown; message: unknown };
  assert.equal(typeof body.error, "string");
  assert.equal(typeof body.message, "string");
  assert.ok((body.message as string).length > 0);
  if (code !== undefined) assert.equal(body.error, code);
  return body as { error: string; message: string };
}

describe("relayer API", () => {
  let dir: string;
  let h: Harness;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "gradnet-api-"));
    h = await harness(dir);
  });
  after(async () => {
    await h.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const upload = (payload: Buffer | string, contentType: string | null = "application/octet-stream") =>
    h.app.inject({
      method: "POST",
      url: "/models",
      payload,
      headers: contentType === null ? {} : { "content-type": contentType },
    });

  describe("POST /models", () => {
    test("stores a valid model: 201 with its sha256 and URI, then 200", async () => {
      const first = await upload(IRIS);
      assert.equal(first.statusCode, 201);
      const body = first.json();
      assert.equal(body.sha256, IRIS_SHA256);
      assert.equal(body.size, IRIS.length);
      assert.equal(body.uri, `${PUBLIC_URL}/models/${IRIS_SHA256}`);
      assert.deepEqual(body.onnx.inputs, ["input"]);
      const second = await upload(IRIS);
      assert.equal(second.statusCode, 200);
      assert.deepEqual(second.json(), body);
    });

    test("too large: 413 JSON", async () => {
      const smallDir = mkdtempSync(path.join(tmpdir(), "gradnet-api-small-"));
      const small = await harness(smallDir, { maxModelBytes: 1000 });
      try {
        assert.ok(IRIS.length > 1000);
        assertError(
          await small.app.inject({
            method: "POST",
            url: "/models",
            payload: IRIS,
            headers: { "content-type": "application/octet-stream" },
          }),
          413,
          "PAYLOAD_TOO_LARGE",
        );
      } finally {
        await small.app.close();
        rmSync(smallDir, { recursive: true, force: true });
      }
    });

    test("wrong or missing content type: 415 JSON", async () => {
      assertError(
        await upload(JSON.stringify({ model: "x" }), "application/json"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
      );
      assertError(await upload("abc", "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE");
      assertError(await upload(IRIS, "application/x-onnx"), 415, "UNSUPPORTED_MEDIA_TYPE");
      // (inject labels a Buffer without a type as octet-stream, so send text to test "no type")
      assertError(await upload("abc", null), 415, "UNSUPPORTED_MEDIA_TYPE");
    });

    test("not ONNX, truncated, or with external data: 400 with the reason", async () => {
      const garbage = assertError(
        await upload(Buffer.from("definitely not onnx")),
        400,
        "INVALID_ONNX_MODEL",
      );
      assert.match(garbage.message, /ONNX/);
      assertError(await upload(IRIS.subarray(0, 500)), 400, "INVALID_ONNX_MODEL");
      assertError(await upload(Buffer.alloc(0)), 400);
      const ext = assertError(await upload(externalDataModel()), 400, "INVALID_ONNX_MODEL");
      assert.match(ext.message, /external/);
    });
  });

  describe("GET /models/:hash", () => {
    test("200 with the stored bytes", async () => {
      await upload(IRIS);
      const res = await h.app.inject({ method: "GET", url: `/models/${IRIS_SHA256}` });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-type"], "application/octet-stream");
      assert.equal(Number(res.headers["content-length"]), IRIS.length);
      assert.deepEqual(res.rawPayload, IRIS);
      const upper = await h.app.inject({
        method: "GET",
        url: `/models/0x${IRIS_SHA256.slice(2).toUpperCase()}`,
      });
      assert.deepEqual(upper.rawPayload, IRIS);
    });

    test("404 for an absent hash, 400 for a malformed one", async () => {
      assertError(
        await h.app.inject({ method: "GET", url: `/models/0x${"0".repeat(64)}` }),
        404,
        "NOT_FOUND",
      );
      for (const bad of [
        "0x1234",
        "abc",
        `0x${"g".repeat(64)}`,
        "..%2F..%2Fetc%2Fpasswd",
        `0x${"a".repeat(65)}`,
      ]) {
        assertError(await h.app.inject({ method: "GET", url: `/models/${bad}` }), 400, "BAD_REQUEST");
      }
    });
  });

  describe("GET /requests/:id", () => {
    test("a pending request", async () => {
      h.hub.states.set(1n, 1);
      h.hub.requested.set(1n, requestedLog(1n));
      const res = await h.app.inject({ method: "GET", url: "/requests/1" });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), {
        requestId: "1",
        state: "Pending",
        modelId: MODEL_ID,
        requester: REQUESTER,
        callbackGasLimit: 100_000,
        fee: "1000000000000000",
        deadline: "1900000000",
        inputHash: `0x${"11".repeat(32)}`,
        inputIsRef: false,
        redundancy: 1,
        requestTx: tx(7),
        requestBlock: "7",
      });
    });

    test("a by-reference request shows its input URI", async () => {
      h.hub.states.set(4n, 1);
      h.hub.requested.set(4n, requestedLog(4n, true));
      const body = (await h.app.inject({ method: "GET", url: "/requests/4" })).json();
      assert.equal(body.inputIsRef, true);
      assert.equal(body.inputUri, "http://store.test/inputs/abc");
    });

    test("a fulfilled request with decoded outputs (int64 as strings)", async () => {
      const { output, outputHash } = encodeOutput(
        [
          { name: "probabilities", dtype: "float32", shape: [1, 3], data: [0.97, 0.025, 0.005] },
          { name: "label", dtype: "int64", shape: [1], data: [0n] },
        ],
        6,
      );
      h.hub.states.set(2n, 2);
      h.hub.requested.set(2n, requestedLog(2n));
      h.hub.fulfilled.set(2n, {
        requestId: 2n,
        node: NODE,
        status: 0,
        outputHash,
        fulfilledAt: 1_800_000_000n,
        callbackResult: 1,
        output,
        txHash: tx(9),
        blockNumber: 9n,
      });
      const res = await h.app.inject({ method: "GET", url: "/requests/2" });
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.equal(body.state, "Fulfilled");
      assert.deepEqual(body.fulfilment, {
        node: NODE,
        status: "Success",
        outputHash,
        fulfilledAt: "1800000000",
        callbackResult: "Success",
        output,
        outputs: [
          { name: "label", dtype: "int64", shape: [1], data: ["0"] },
          { name: "probabilities", dtype: "float32", shape: [1, 3], data: [0.97, 0.025, 0.005] },
        ],
        tx: tx(9),
        block: "9",
      });
      assert.equal(body.refund, undefined);
    });

    test("a failed request shows the reason and the refund", async () => {
      const reason = stringToHex("input shape [1,5] does not fit [-1,4]");
      h.hub.states.set(3n, 3);
      h.hub.requested.set(3n, requestedLog(3n));
      h.hub.fulfilled.set(3n, {
        requestId: 3n,
        node: NODE,
        status: 2,
        outputHash: `0x${"00".repeat(32)}`,
        fulfilledAt: 1_800_000_000n,
        callbackResult: 0,
        output: reason,
        txHash: tx(10),
        blockNumber: 10n,
      });
      h.hub.refunded.set(3n, {
        requestId: 3n,
        requester: REQUESTER,
        fee: 10n ** 15n,
        reason: 3,
        txHash: tx(10),
        blockNumber: 10n,
      });
      const body = (await h.app.inject({ method: "GET", url: "/requests/3" })).json();
      assert.equal(body.state, "Failed");
      assert.equal(body.fulfilment.status, "InvalidInput");
      assert.equal(body.fulfilment.reason, "input shape [1,5] does not fit [-1,4]");
      assert.deepEqual(body.fulfilment.outputs, []);
      assert.deepEqual(body.refund, { tx: tx(10), block: "10", reason: "Failed", fee: "1000000000000000" });
    });

    test("an off-chain output shows its URI", async () => {
      h.hub.states.set(5n, 2);
      h.hub.requested.set(5n, requestedLog(5n));
      h.hub.fulfilled.set(5n, {
        requestId: 5n,
        node: NODE,
        status: 1,
        outputHash: `0x${"22".repeat(32)}`,
        fulfilledAt: 1n,
        callbackResult: 0,
        output: encodeAbiParameters([{ type: "string" }], ["http://store.test/outputs/x"]),
        txHash: tx(11),
        blockNumber: 11n,
      });
      const body = (await h.app.inject({ method: "GET", url: "/requests/5" })).json();
      assert.equal(body.fulfilment.status, "SuccessOffchain");
      assert.equal(body.fulfilment.outputUri, "http://store.test/outputs/x");
    });

    test("404 for an unknown id; 400 for a malformed or oversized one", async () => {
      assertError(await h.app.inject({ method: "GET", url: "/requests/999" }), 404, "UNKNOWN_REQUEST");
      assertError(await h.app.inject({ method: "GET", url: "/requests/0" }), 404, "UNKNOWN_REQUEST");
      for (const bad of ["abc", "-1", "1.5", "0x10", "1e3", "9".repeat(79)]) {
        assertError(await h.app.inject({ method: "GET", url: `/requests/${bad}` }), 400, "BAD_REQUEST");
      }
      assertError(await h.app.inject({ method: "GET", url: `/requests/${(1n << 256n).toString()}` }), 400);
    });

    test("502 JSON when the chain does not answer", async () => {
      h.hub.broken = true;
      try {
        const err = assertError(
          await h.app.inject({ method: "GET", url: "/requests/1" }),
          502,
          "CHAIN_UNAVAILABLE",
        );
        assert.match(err.message, /ECONNREFUSED/);
      } finally {
        h.hub.broken = false;
      }
    });
  });

  describe("status routes", () => {
    test("GET /health: ok, with chain, checkpoint and queue", async () => {
      const res = await h.app.inject({ method: "GET", url: "/health" });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), {
        status: "ok",
        chainId: 31337,
        head: 20,
        checkpoint: 18,
        lagBlocks: 2,
        redis: "ok",
        queue: { waiting: 3, active: 1, completed: 5, failed: 0, delayed: 2 },
        watcher: { running: true, consecutiveFailures: 0, checkpointAhead: false },
      });
    });

    test("GET /health: degraded (503) when Redis or the RPC is down, or the watcher is failing", async () => {
      h.redisUp.value = false;
      let res = await h.app.inject({ method: "GET", url: "/health" });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().status, "degraded");
      assert.equal(res.json().redis, "down");
      assert.equal(res.json().queue, null);
      h.redisUp.value = true;

      h.hub.head = new Error("rpc down");
      res = await h.app.inject({ method: "GET", url: "/health" });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().head, null);
      assert.equal(res.json().lagBlocks, null);
      h.hub.head = 20n;

      h.watcher.stats.consecutiveFailures = 2;
      h.watcher.stats.lastError = "connection refused";
      res = await h.app.inject({ method: "GET", url: "/health" });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().watcher.lastError, "connection refused");
      h.watcher.stats.consecutiveFailures = 0;
      h.watcher.stats.lastError = undefined;

      assert.equal((await h.app.inject({ method: "GET", url: "/health" })).statusCode, 200);
    });

    test("GET /metrics: Prometheus text with the relayer's metrics", async () => {
      h.metrics.jobsQueued.inc(3);
      const res = await h.app.inject({ method: "GET", url: "/metrics" });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers["content-type"]), /^text\/plain/);
      for (const name of [
        "gradnet_relayer_blocks_processed_total",
        "gradnet_relayer_requests_queued_total",
        "gradnet_relayer_jobs_queued_total 3",
        "gradnet_relayer_checkpoint_block",
        "gradnet_relayer_lag_blocks",
        "gradnet_relayer_rpc_errors_total",
        'gradnet_relayer_http_request_duration_seconds_count{method="GET",route="/health",status_code="200"}',
      ]) {
        assert.ok(res.body.includes(name), `metrics include ${name}`);
      }
    });

    test("unknown routes are 404 JSON", async () => {
      assertError(await h.app.inject({ method: "GET", url: "/nope" }), 404, "NOT_FOUND");
    });

    test("without an off-chain node key, /inference says so (503) and the route is still documented", async () => {
      const body = {
        payer: `0x${"b1".repeat(20)}`,
        modelId: `0x${"11".repeat(32)}`,
        input: "0x",
        maxFee: "1",
        nonce: "1",
        expiry: 2_000_000_000,
        signature: "0x00",
      };
      const post = assertError(
        await h.app.inject({ method: "POST", url: "/inference", payload: body }),
        503,
        "OFFCHAIN_DISABLED",
      );
      assert.match(post.message, /OFFCHAIN_NODE_PRIVATE_KEY/);
      assertError(await h.app.inject({ method: "GET", url: "/inference" }), 503, "OFFCHAIN_DISABLED");
      // The body is checked first: a malformed request is a 400 whatever the node's state.
      assertError(
        await h.app.inject({ method: "POST", url: "/inference", payload: { ...body, nonce: "-1" } }),
        400,
        "BAD_REQUEST",
      );
      const doc = (await h.app.inject({ method: "GET", url: "/docs/json" })).json();
      const schema = doc.paths["/inference"].post.requestBody.content["application/json"].schema;
      assert.deepEqual([...schema.required].sort(), [
        "expiry",
        "input",
        "maxFee",
        "modelId",
        "nonce",
        "payer",
        "signature",
      ]);
    });

    test("OpenAPI document at /docs/json, Swagger UI at /docs", async () => {
      const doc = (await h.app.inject({ method: "GET", url: "/docs/json" })).json();
      assert.equal(doc.info.title, "gradnet relayer");
      assert.match(doc.openapi, /^3\./);
      for (const p of ["/health", "/metrics", "/requests/{id}", "/models", "/models/{hash}"]) {
        assert.ok(doc.paths[p], `documents ${p}`);
      }
      assert.ok(doc.paths["/models"].post.requestBody.content["application/octet-stream"]);
      const ui = await h.app.inject({ method: "GET", url: "/docs/" });
      assert.equal(ui.statusCode, 200);
      assert.match(ui.body, /swagger/i);
    });
  });
});
