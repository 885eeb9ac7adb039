/**
 * The relayer's HTTP API (Fastify): health, metrics, request status, the model store that
 * workers fetch registered models from, off-chain inference paid from a BatchSettlement deposit,
 * and the proofs of the batches it is settled in. OpenAPI at /docs/json, Swagger UI at /docs.
 *
 * Every error is JSON `{ error, message }`: `error` is a stable code, `message` says what happened.
 * Bad input is always a 4xx; a 5xx means the relayer or its chain/Redis failed.
 */
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import { hexToString, decodeAbiParameters, type Hex } from "viem";
import {
  CallbackResult,
  leafFor,
  loadBatchTree,
  proofFor,
  RESULT_STATUS_NAMES,
  RequestState,
  ResultStatus,
  decodeTensors,
  isErrorStatus,
  type NamedTensor,
  type OffchainRequestBody,
} from "../sdk";
import type { BatchStore } from "./batchPoster";
import type { HubReader } from "./chain";
import type { RelayerMetrics } from "./metrics";
import { OffchainRequestError, type OffchainService } from "./offchain";
import { InvalidOnnxModelError, validateOnnx, type ModelStore } from "./store";
import type { WatcherStats } from "./watcher";

export interface QueueCounts {
  waiting: number;
  active: number;
  completed: number;
  failed: number;
  delayed: number;
}

export interface ApiDeps {
  chainId: number;
  /** The hub, read through the relayer's public client. */
  reader: HubReader;
  store: ModelStore;
  /** The BullMQ queue (only its counts are read). */
  queue: { getJobCounts(...types: (keyof QueueCounts)[]): Promise<Record<string, number>> };
  /** The relayer's Redis connection (only pinged). */
  redis: { ping(): Promise<string> };
  watcher: { readonly stats: WatcherStats };
  metrics: RelayerMetrics;
  logger: FastifyBaseLogger;
  maxModelBytes: number;
  /** Base URL of model URIs: `${publicUrl()}/models/<sha256>`. */
  publicUrl: () => string;
  /** How long /health waits for Redis and the RPC; default 2 s. */
  probeTimeoutMs?: number;
  /**
   * Batch settlement proofs (`GET /batches/:batchId/proof/:requestId`): the roots on chain and
   * the leaves this node posted. Without it the route is not served.
   */
  batches?: {
    store: BatchStore;
    /** `BatchSettlement.batch(batchId).root`; undefined when there is no such batch. */
    rootOf(batchId: bigint): Promise<Hex | undefined>;
  };
  /**
   * Off-chain inference paid from a BatchSettlement deposit (`GET` and `POST /inference`).
   * Without it both answer 503 OFFCHAIN_DISABLED.
   */
  offchain?: Pick<OffchainService, "info" | "serve">;
}

/** An error with an HTTP status and a stable code, rendered as `{ error: code, message }`. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const UINT256_MAX = (1n << 256n) - 1n;
const OCTET_STREAM = "application/octet-stream";

// ---------------------------------------------------------------------------- JSON schemas

const errorSchema = {
  $id: "Error",
  type: "object",
  required: ["error", "message"],
  properties: { error: { type: "string" }, message: { type: "string" } },
} as const;
const errorRef = { $ref: "Error#" } as const;

const hex = (description: string) => ({ type: "string", pattern: "^0x[0-9a-fA-F]*$", description }) as const;
const decimal = (description: string) => ({ type: "string", pattern: "^[0-9]+$", description }) as const;
const nullableInt = (description: string) => ({ type: ["integer", "null"], description }) as const;

const tensorSchema = {
  type: "object",
  required: ["name", "dtype", "shape", "data"],
  properties: {
    name: { type: "string" },
    dtype: { type: "string", enum: ["float32", "int32", "int64", "string", "bool", "float64"] },
    shape: { type: "array", items: { type: "integer" } },
    data: {
      type: "array",
      description: "Row-major values: floats as numbers, int64 as decimal strings, strings, booleans",
      items: { type: ["number", "string", "boolean"] },
    },
  },
} as const;

const requestViewSchema = {
  type: "object",
  required: [
    "requestId",
    "state",
    "modelId",
    "requester",
    "callbackGasLimit",
    "fee",
    "deadline",
    "inputHash",
    "inputIsRef",
    "redundancy",
    "requestTx",
    "requestBlock",
  ],
  properties: {
    requestId: decimal("Sequential request id"),
    state: { type: "string", enum: [...RequestState] },
    modelId: hex("sha256 of the model's ONNX bytes"),
    requester: hex("Who paid, and receives the callback or refund"),
    callbackGasLimit: { type: "integer" },
    fee: decimal("Escrowed fee, wei"),
    deadline: decimal("Unix seconds; after it the request can only be refunded"),
    inputHash: hex("sha256 of the input bytes"),
    inputIsRef: { type: "boolean" },
    redundancy: { type: "integer", minimum: 1, description: "distinct nodes that answer" },
    inputUri: { type: "string", description: "Where the input is stored, for a by-reference request" },
    requestTx: hex("Transaction of InferenceRequested"),
    requestBlock: decimal("Block of InferenceRequested"),
    fulfilment: {
      type: "object",
      required: [
        "node",
        "status",
        "outputHash",
        "fulfilledAt",
        "callbackResult",
        "output",
        "outputs",
        "tx",
        "block",
      ],
      properties: {
        node: hex("The inference node that answered"),
        status: { type: "string", enum: RESULT_STATUS_NAMES },
        outputHash: hex("keccak256 of the output"),
        fulfilledAt: decimal("Unix seconds"),
        callbackResult: { type: "string", enum: [...CallbackResult] },
        output: hex("The output bytes as posted"),
        outputs: { type: "array", items: tensorSchema, description: "Decoded outputs (Success only)" },
        outputUri: { type: "string", description: "Where the output is stored (SuccessOffchain)" },
        reason: { type: "string", description: "Why the request failed (error statuses)" },
        tx: hex("Transaction of InferenceFulfilled"),
        block: decimal("Block of InferenceFulfilled"),
      },
    },
    refund: {
      type: "object",
      required: ["tx", "block", "reason", "fee"],
      properties: {
        tx: hex("Transaction of RequestRefunded"),
        block: decimal("Block of RequestRefunded"),
        reason: { type: "string", enum: [...RequestState], description: "Failed, Refunded or Overturned" },
        fee: decimal("Fee credited back to the requester, wei"),
      },
    },
    release: {
      type: "object",
      required: ["tx", "block", "fee"],
      properties: {
        tx: hex("Transaction of RequestReleased (settlement finalised the request)"),
        block: decimal("Block of RequestReleased"),
        fee: decimal("Fee handed to settlement, wei"),
      },
    },
  },
} as const;

const countsSchema = {
  type: ["object", "null"],
  required: ["waiting", "active", "completed", "failed", "delayed"],
  properties: {
    waiting: { type: "integer" },
    active: { type: "integer" },
    completed: { type: "integer" },
    failed: { type: "integer" },
    delayed: { type: "integer" },
  },
} as const;

const healthSchema = {
  type: "object",
  required: ["status", "chainId", "head", "checkpoint", "lagBlocks", "redis", "queue", "watcher"],
  properties: {
    status: { type: "string", enum: ["ok", "degraded"] },
    chainId: { type: "integer" },
    head: nullableInt("Chain head now; null when the RPC does not answer"),
    checkpoint: nullableInt("Last block whose requests are all queued; null before the first"),
    lagBlocks: nullableInt("head - checkpoint"),
    redis: { type: "string", enum: ["ok", "down"] },
    queue: countsSchema,
    watcher: {
      type: "object",
      required: ["running", "consecutiveFailures"],
      properties: {
        running: { type: "boolean" },
        consecutiveFailures: { type: "integer" },
        lastError: { type: "string" },
        checkpointAhead: { type: "boolean" },
      },
    },
  },
} as const;

const onnxSummarySchema = {
  type: "object",
  properties: {
    irVersion: { type: "integer" },
    opsets: {
      type: "array",
      items: {
        type: "object",
        properties: { domain: { type: "string" }, version: { type: "integer" } },
      },
    },
    producer: { type: "string" },
    nodes: { type: "integer" },
    inputs: { type: "array", items: { type: "string" } },
    outputs: { type: "array", items: { type: "string" } },
  },
} as const;

const storedModelSchema = {
  type: "object",
  required: ["sha256", "size", "uri"],
  properties: {
    sha256: hex("sha256 of the bytes: the model id to register"),
    size: { type: "integer" },
    uri: { type: "string", description: "Where workers fetch the bytes: register this URI on chain" },
    onnx: onnxSummarySchema,
  },
} as const;

const binary = { type: "string", format: "binary" } as const;

const batchProofSchema = {
  type: "object",
  required: ["batchId", "root", "payer", "modelId", "requestId", "inputHash", "outputHash", "fee", "proof"],
  properties: {
    batchId: decimal("Batch id in BatchSettlement"),
    root: hex("The batch's Merkle root, as on chain"),
    payer: hex("Whose deposit paid the batch"),
    modelId: hex("The model every result of the batch ran"),
    requestId: decimal("The off-chain request"),
    inputHash: hex("sha256 of the input bytes"),
    outputHash: hex("keccak256 of the canonical output"),
    fee: decimal("What the payer was charged for this result, wei"),
    proof: {
      type: "array",
      items: hex("Sibling hash"),
      description:
        "Merkle proof: pass to BatchSettlement.verifyLeaf / challengeLeaf, or the SDK's verifyBatchProof",
    },
  },
} as const;

const offchainInfoSchema = {
  type: "object",
  required: ["chainId", "verifyingContract", "node", "maxLeaves", "maxWaitMs"],
  properties: {
    chainId: { type: "integer", description: "The EIP-712 domain's chainId" },
    verifyingContract: hex("BatchSettlement: the EIP-712 domain's verifyingContract"),
    node: hex("The inference node to name in the typed data and to approve in BatchSettlement"),
    maxLeaves: { type: "integer", description: "Results per batch, at most" },
    maxWaitMs: {
      type: "integer",
      description: "How long a result waits, at most, for its batch to be posted",
    },
  },
} as const;

const offchainRequestSchema = {
  type: "object",
  required: ["payer", "modelId", "input", "maxFee", "nonce", "expiry", "signature"],
  additionalProperties: false,
  properties: {
    payer: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$", description: "Whose deposit pays" },
    modelId: { type: "string", pattern: "^0x[0-9a-fA-F]{64}$", description: "The registered model" },
    input: {
      type: "string",
      pattern: "^0x([0-9a-fA-F]{2})*$",
      description: "The canonical input bytes, abi.encode(Tensor[]); inputHash = sha256 of them",
    },
    maxFee: {
      type: "string",
      pattern: "^[0-9]{1,78}$",
      description: "The most the payer pays, wei (signed)",
    },
    nonce: {
      type: "string",
      pattern: "^[0-9]{1,78}$",
      description: "Decimal uint256, used once per payer (signed)",
    },
    expiry: {
      type: "integer",
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: "Unix seconds; refused from then on (signed)",
    },
    signature: {
      type: "string",
      pattern: "^0x[0-9a-fA-F]*$",
      description: "The payer's EIP-712 signature of OffchainInference (docs/relayer.md)",
    },
  },
} as const;

const offchainAnswerSchema = {
  type: "object",
  required: [
    "requestId",
    "payer",
    "node",
    "modelId",
    "inputHash",
    "outputHash",
    "output",
    "outputs",
    "fee",
    "batch",
  ],
  properties: {
    requestId: decimal("uint256(keccak256(abi.encode(payer, nonce))): the leaf's request id"),
    payer: hex("Whose deposit pays"),
    node: hex("The inference node that answered and posts the batch"),
    modelId: hex("The model that ran"),
    inputHash: hex("sha256 of the input bytes"),
    outputHash: hex("keccak256 of the canonical output"),
    output: hex("The canonical output bytes"),
    outputs: { type: "array", items: tensorSchema, description: "Decoded outputs" },
    fee: decimal("What the payer is charged, wei (the model's fee)"),
    batch: {
      type: "string",
      enum: ["pending"],
      description: "The result waits for its batch; BatchPosted (payer, node) names the batch id",
    },
  },
} as const;

// ------------------------------------------------------------------------------ the app

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    // Only POST /models takes large bodies (MAX_MODEL_BYTES); everything else keeps 1 MiB.
    bodyLimit: 1024 * 1024,
  });

  app.addSchema(errorSchema);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "gradnet relayer",
        description:
          "Watches the InferenceHub, queues inference jobs, serves the model store and reports request status.",
        version: "0.1.0",
      },
      tags: [
        { name: "status", description: "Health and metrics" },
        { name: "requests", description: "Inference requests on chain" },
        { name: "models", description: "Content-addressed model store" },
        { name: "batches", description: "Proofs of off-chain results settled in Merkle batches" },
        { name: "inference", description: "Off-chain inference paid from a BatchSettlement deposit" },
      ],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });

  app.addContentTypeParser(
    OCTET_STREAM,
    { parseAs: "buffer", bodyLimit: deps.maxModelBytes },
    (_req, body, done) => done(null, body),
  );

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation !== undefined) {
      return reply.code(400).send({ error: "BAD_REQUEST", message: err.message });
    }
    if (err instanceof HttpError) {
      if (err.statusCode >= 500) request.log.error({ err }, err.message);
      return reply.code(err.statusCode).send({ error: err.code, message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE" || status === 413) {
      return reply.code(413).send({ error: "PAYLOAD_TOO_LARGE", message: err.message });
    }
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || status === 415) {
      return reply.code(415).send({ error: "UNSUPPORTED_MEDIA_TYPE", message: err.message });
    }
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: err.code ?? "BAD_REQUEST", message: err.message });
    }
    request.log.error({ err }, "unhandled error");
    return reply.code(500).send({ error: "INTERNAL", message: "internal error; see the relayer's log" });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: "NOT_FOUND", message: `no route ${request.method} ${request.url}` }),
  );

  app.addHook("onResponse", async (request, reply) => {
    deps.metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? "(unmatched)",
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });

  const probeTimeoutMs = deps.probeTimeoutMs ?? 2000;

  // ------------------------------------------------------------------------------ status

  app.get(
    "/health",
    {
      logLevel: "warn",
      schema: {
        tags: ["status"],
        summary: "Liveness of the chain watcher, the RPC and Redis",
        description:
          "200 when everything answers and the watcher is not failing, else 503 with the same body.",
        response: { 200: healthSchema, 503: healthSchema },
      },
    },
    async (_request, reply) => {
      const [head, redisOk, counts] = await Promise.all([
        withTimeout(deps.reader.getBlockNumber(), probeTimeoutMs).catch(() => undefined),
        withTimeout(deps.redis.ping(), probeTimeoutMs).then(
          () => true,
          () => false,
        ),
        withTimeout(
          deps.queue.getJobCounts("waiting", "active", "completed", "failed", "delayed"),
          probeTimeoutMs,
        ).catch(() => undefined),
      ]);
      const stats = deps.watcher.stats;
      const checkpoint = stats.checkpoint;
      const lag =
        head === undefined || checkpoint === undefined
          ? undefined
          : head > checkpoint
            ? head - checkpoint
            : 0n;
      const ok =
        head !== undefined &&
        redisOk &&
        stats.running &&
        stats.consecutiveFailures === 0 &&
        !stats.checkpointAhead;
      const body = {
        status: ok ? "ok" : "degraded",
        chainId: deps.chainId,
        head: head === undefined ? null : Number(head),
        checkpoint: checkpoint === undefined ? null : Number(checkpoint),
        lagBlocks: lag === undefined ? null : Number(lag),
        redis: redisOk ? "ok" : "down",
        queue:
          counts === undefined
            ? null
            : {
                waiting: counts.waiting ?? 0,
                active: counts.active ?? 0,
                completed: counts.completed ?? 0,
                failed: counts.failed ?? 0,
                delayed: counts.delayed ?? 0,
              },
        watcher: {
          running: stats.running,
          consecutiveFailures: stats.consecutiveFailures,
          ...(stats.lastError === undefined ? {} : { lastError: stats.lastError }),
          checkpointAhead: stats.checkpointAhead,
        },
      };
      return reply.code(ok ? 200 : 503).send(body);
    },
  );

  app.get(
    "/metrics",
    {
      logLevel: "warn",
      schema: {
        tags: ["status"],
        summary: "Prometheus metrics",
        response: { 200: { content: { "text/plain": { schema: { type: "string" } } } } },
      },
    },
    async (_request, reply) => {
      const text = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(text);
    },
  );

  // ---------------------------------------------------------------------------- requests

  app.get<{ Params: { id: string } }>(
    "/requests/:id",
    {
      schema: {
        tags: ["requests"],
        summary: "A request's state, parameters, answer and refund, from the hub and its events",
        params: {
          type: "object",
          required: ["id"],
          properties: { id: { type: "string", pattern: "^[0-9]{1,78}$", description: "Decimal request id" } },
        },
        response: { 200: requestViewSchema, 400: errorRef, 404: errorRef, 502: errorRef },
      },
    },
    async (request) => {
      const id = BigInt(request.params.id);
      if (id > UINT256_MAX) throw new HttpError(400, "BAD_REQUEST", "the request id does not fit uint256");
      return readRequest(deps.reader, id);
    },
  );

  // ------------------------------------------------------------------------------ models

  app.post<{ Body: Buffer }>(
    "/models",
    {
      bodyLimit: deps.maxModelBytes,
      schema: {
        tags: ["models"],
        summary: "Store an ONNX model; returns its sha256 (the model id) and the URI to register",
        description:
          `Send the raw ONNX bytes with Content-Type: ${OCTET_STREAM}, at most ${deps.maxModelBytes} bytes. ` +
          "The model must be self-contained (no external data). 201 when stored, 200 when already there.",
        body: { content: { [OCTET_STREAM]: { schema: binary } } },
        response: {
          200: storedModelSchema,
          201: storedModelSchema,
          400: errorRef,
          413: errorRef,
          415: errorRef,
        },
      },
      // The body is raw bytes: nothing for a JSON validator to check.
      validatorCompiler: () => () => true,
      onRequest: async (request) => {
        const type = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        if (type !== OCTET_STREAM) {
          throw new HttpError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            `send the ONNX bytes with Content-Type: ${OCTET_STREAM} (got ${type === "" ? "none" : type})`,
          );
        }
      },
    },
    async (request, reply) => {
      const bytes = request.body;
      if (!Buffer.isBuffer(bytes))
        throw new HttpError(400, "BAD_REQUEST", "the body must be the model's bytes");
      let summary;
      try {
        summary = validateOnnx(bytes);
      } catch (err) {
        if (err instanceof InvalidOnnxModelError) throw new HttpError(400, "INVALID_ONNX_MODEL", err.message);
        throw err;
      }
      const stored = await deps.store.put(bytes);
      const uri = `${deps.publicUrl()}/models/${stored.sha256}`;
      request.log.info({ sha256: stored.sha256, size: stored.size, created: stored.created }, "model stored");
      return reply.code(stored.created ? 201 : 200).send({
        sha256: stored.sha256,
        size: stored.size,
        uri,
        onnx: {
          irVersion: summary.irVersion,
          opsets: summary.opsets,
          producer: summary.producer,
          nodes: summary.nodes,
          inputs: summary.inputs,
          outputs: summary.outputs,
        },
      });
    },
  );

  app.get<{ Params: { hash: string } }>(
    "/models/:hash",
    {
      schema: {
        tags: ["models"],
        summary: "The bytes stored under a sha256 (what workers fetch)",
        params: {
          type: "object",
          required: ["hash"],
          properties: {
            hash: {
              type: "string",
              pattern: "^0x[0-9a-fA-F]{64}$",
              description: "sha256, 0x + 64 hex digits",
            },
          },
        },
        response: {
          200: { content: { [OCTET_STREAM]: { schema: binary } } },
          400: errorRef,
          404: errorRef,
        },
      },
    },
    async (request, reply) => {
      const hash = request.params.hash.toLowerCase();
      const file = await deps.store.open(hash);
      if (file === undefined)
        throw new HttpError(404, "NOT_FOUND", `no file with sha256 ${hash} in the store`);
      return reply
        .type(OCTET_STREAM)
        .header("content-length", file.size)
        .header("etag", `"${hash}"`)
        .header("cache-control", "public, max-age=31536000, immutable")
        .send(file.stream);
    },
  );

  // --------------------------------------------------------------------------- inference

  const offchain = deps.offchain;
  const offchainDisabled = () =>
    new HttpError(
      503,
      "OFFCHAIN_DISABLED",
      "this relayer serves no off-chain inference: OFFCHAIN_NODE_PRIVATE_KEY is not set",
    );

  app.get(
    "/inference",
    {
      schema: {
        tags: ["inference"],
        summary: "What to sign for off-chain inference: the EIP-712 domain and the node",
        response: { 200: offchainInfoSchema, 503: errorRef },
      },
    },
    async () => {
      if (offchain === undefined) throw offchainDisabled();
      return offchain.info();
    },
  );

  app.post<{ Body: OffchainRequestBody }>(
    "/inference",
    {
      schema: {
        tags: ["inference"],
        summary: "Run a model now, paid from the payer's BatchSettlement deposit",
        description:
          "The payer signs EIP-712 OffchainInference { node, modelId, inputHash, maxFee, nonce, expiry } " +
          "(domain gradnet/1, chainId, verifyingContract = BatchSettlement). The node charges the model's fee " +
          "in its next Merkle batch. 400 bad body, EXPIRED, or INVALID_INPUT (names the tensor); 401 " +
          "BAD_SIGNATURE; 402 FEE_TOO_LOW or INSUFFICIENT_FUNDS (deposit or allowance); 404 UNKNOWN_MODEL; " +
          "409 NONCE_USED; 410 MODEL_DEPRECATED; 422 the model failed (nothing charged); 502 the chain does not " +
          "answer; 503 OFFCHAIN_DISABLED, or the model or Redis unavailable now.",
        body: offchainRequestSchema,
        response: {
          200: offchainAnswerSchema,
          400: errorRef,
          401: errorRef,
          402: errorRef,
          404: errorRef,
          409: errorRef,
          410: errorRef,
          422: errorRef,
          502: errorRef,
          503: errorRef,
        },
      },
    },
    async (request) => {
      if (offchain === undefined) throw offchainDisabled();
      try {
        const answer = await offchain.serve(request.body);
        return { ...answer, outputs: answer.outputs.map(tensorToJson) };
      } catch (err) {
        if (err instanceof OffchainRequestError) throw new HttpError(err.status, err.code, err.message);
        throw err;
      }
    },
  );

  // ----------------------------------------------------------------------------- batches

  const batches = deps.batches;
  if (batches !== undefined) {
    app.get<{ Params: { batchId: string; requestId: string } }>(
      "/batches/:batchId/proof/:requestId",
      {
        schema: {
          tags: ["batches"],
          summary: "The Merkle proof of one result in a batch this node posted",
          description:
            "The root is read from BatchSettlement on chain; the leaves from this node's batch store. " +
            "404 UNKNOWN_BATCH: no such batch on chain; BATCH_NOT_STORED: this node does not hold the " +
            "batch's leaves; UNKNOWN_RESULT: the batch has no result for the request.",
          params: {
            type: "object",
            required: ["batchId", "requestId"],
            properties: {
              batchId: { type: "string", pattern: "^[0-9]{1,78}$", description: "Decimal batch id" },
              requestId: { type: "string", pattern: "^[0-9]{1,78}$", description: "Decimal request id" },
            },
          },
          response: { 200: batchProofSchema, 400: errorRef, 404: errorRef, 502: errorRef },
        },
      },
      async (request) => {
        const batchId = BigInt(request.params.batchId);
        const requestId = BigInt(request.params.requestId);
        if (batchId > UINT256_MAX || requestId > UINT256_MAX)
          throw new HttpError(400, "BAD_REQUEST", "the batch id and request id must fit uint256");
        const root = await chain("the batch's root", () => batches.rootOf(batchId));
        if (root === undefined) throw new HttpError(404, "UNKNOWN_BATCH", `batch ${batchId} does not exist`);
        const record = await batches.store.get(root);
        if (record === undefined)
          throw new HttpError(
            404,
            "BATCH_NOT_STORED",
            `this node does not hold the leaves of batch ${batchId}`,
          );
        const tree = loadBatchTree(record.tree);
        const leaf = leafFor(tree, requestId);
        if (leaf === undefined)
          throw new HttpError(
            404,
            "UNKNOWN_RESULT",
            `batch ${batchId} holds no result for request ${requestId}`,
          );
        return {
          batchId: batchId.toString(),
          root,
          payer: record.payer,
          modelId: record.modelId,
          requestId: requestId.toString(),
          inputHash: leaf.inputHash,
          outputHash: leaf.outputHash,
          fee: record.fees[requestId.toString()] ?? "0",
          proof: proofFor(tree, requestId),
        };
      },
    );
  }

  return app;
}

// ------------------------------------------------------------------------------ helpers

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A tensor with bigints as decimal strings, so JSON can carry it. */
export interface TensorJson {
  name: string;
  dtype: string;
  shape: number[];
  data: (number | string | boolean)[];
}

export function tensorToJson(t: NamedTensor): TensorJson {
  const data = Array.from(t.data as ArrayLike<number | bigint | string | boolean>, (v) =>
    typeof v === "bigint" ? v.toString() : v,
  );
  return { name: t.name, dtype: t.dtype, shape: [...t.shape], data };
}

export interface RequestView {
  requestId: string;
  state: string;
  modelId: Hex;
  requester: Hex;
  callbackGasLimit: number;
  fee: string;
  deadline: string;
  inputHash: Hex;
  inputIsRef: boolean;
  redundancy: number;
  inputUri?: string;
  requestTx: Hex;
  requestBlock: string;
  fulfilment?: {
    node: Hex;
    status: string;
    outputHash: Hex;
    fulfilledAt: string;
    callbackResult: string;
    output: Hex;
    outputs: TensorJson[];
    outputUri?: string;
    reason?: string;
    tx: Hex;
    block: string;
  };
  refund?: { tx: Hex; block: string; reason: string; fee: string };
  release?: { tx: Hex; block: string; fee: string };
}

async function chain<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new HttpError(502, "CHAIN_UNAVAILABLE", `could not read ${what} from the chain: ${msg}`);
  }
}

/** Everything known about one request: the hub's state plus its events. */
export async function readRequest(reader: HubReader, requestId: bigint): Promise<RequestView> {
  const state = await chain("the request state", () => reader.getRequestState(requestId));
  if (state === 0) throw new HttpError(404, "UNKNOWN_REQUEST", `request ${requestId} does not exist`);
  const requested = await chain("InferenceRequested", () => reader.findRequested(requestId));
  if (requested === undefined) {
    throw new HttpError(
      404,
      "UNKNOWN_REQUEST",
      `request ${requestId} exists on chain but its InferenceRequested event was not found`,
    );
  }
  const r = requested.request;
  const view: RequestView = {
    requestId: r.requestId.toString(),
    state: RequestState[state] ?? `Unknown(${state})`,
    modelId: r.modelId,
    requester: r.requester,
    callbackGasLimit: Number(r.callbackGasLimit),
    fee: r.fee.toString(),
    deadline: r.deadline.toString(),
    inputHash: r.inputHash,
    inputIsRef: r.inputIsRef,
    redundancy: Number(r.redundancy),
    requestTx: requested.txHash,
    requestBlock: requested.blockNumber.toString(),
  };
  if (r.inputIsRef) view.inputUri = utf8(requested.input);
  if (state === 1) return view; // Pending: nothing else has happened

  const from = requested.blockNumber;
  const [fulfilled, refunded, released] = await Promise.all([
    chain("InferenceFulfilled", () => reader.findFulfilled(requestId, from)),
    chain("RequestRefunded", () => reader.findRefunded(requestId, from)),
    chain("RequestReleased", () => reader.findReleased(requestId, from)),
  ]);
  if (fulfilled !== undefined) {
    const status = RESULT_STATUS_NAMES[fulfilled.status] ?? `Unknown(${fulfilled.status})`;
    const f: NonNullable<RequestView["fulfilment"]> = {
      node: fulfilled.node,
      status,
      outputHash: fulfilled.outputHash,
      fulfilledAt: fulfilled.fulfilledAt.toString(),
      callbackResult: CallbackResult[fulfilled.callbackResult] ?? `Unknown(${fulfilled.callbackResult})`,
      output: fulfilled.output,
      outputs: [],
      tx: fulfilled.txHash,
      block: fulfilled.blockNumber.toString(),
    };
    if (fulfilled.status === ResultStatus.Success) {
      try {
        f.outputs = decodeTensors(fulfilled.output).map(tensorToJson);
      } catch {
        // not canonical bytes: the hub checks only the hash, so leave the raw output
      }
    } else if (fulfilled.status === ResultStatus.SuccessOffchain) {
      try {
        [f.outputUri] = decodeAbiParameters([{ type: "string" }], fulfilled.output);
      } catch {
        // not abi.encode(string): leave the raw output
      }
    } else if (isErrorStatus(fulfilled.status)) {
      f.reason = utf8(fulfilled.output);
    }
    view.fulfilment = f;
  }
  if (refunded !== undefined) {
    view.refund = {
      tx: refunded.txHash,
      block: refunded.blockNumber.toString(),
      reason: RequestState[refunded.reason] ?? `Unknown(${refunded.reason})`,
      fee: refunded.fee.toString(),
    };
  }
  if (released !== undefined) {
    view.release = {
      tx: released.txHash,
      block: released.blockNumber.toString(),
      fee: released.fee.toString(),
    };
  }
  return view;
}

function utf8(bytes: Hex): string {
  try {
    return hexToString(bytes);
  } catch {
    return bytes;
  }
}
