/**
 * Typed errors shared by every part of gradnet. Each carries a stable `code` a caller can switch
 * on, the values that explain it, and the underlying `cause` where there is one.
 */
export class GradnetError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

// ------------------------------------------------------------------------------ tensors

/** A tensor cannot be put into, or read from, the canonical encoding. */
export class TensorEncodingError extends GradnetError {
  constructor(
    message: string,
    readonly tensorName?: string,
    options?: { cause?: unknown },
  ) {
    super(
      "TENSOR_ENCODING",
      tensorName === undefined ? message : `tensor "${tensorName}": ${message}`,
      options,
    );
  }
}

/** NaN or ±Infinity: not representable as fixed-point, so never hashed. */
export class NonFiniteValueError extends GradnetError {
  constructor(
    readonly tensorName: string,
    readonly index: number,
    readonly value: number,
  ) {
    super(
      "NON_FINITE_VALUE",
      `tensor "${tensorName}": element ${index} is ${value}; only finite numbers can be encoded`,
    );
  }
}

/** An input does not fit the model's schema; says which tensor and why. */
export class InputSchemaError extends GradnetError {
  constructor(
    readonly tensorName: string,
    readonly reason: string,
  ) {
    super("INPUT_SCHEMA", tensorName === "" ? reason : `input "${tensorName}": ${reason}`);
  }
}

// ------------------------------------------------------------------------------- models

/** Model bytes whose sha256 is not the registered model id. They are never run. */
export class ModelHashMismatchError extends GradnetError {
  constructor(
    readonly modelId: string,
    readonly actual: string,
    readonly uri: string,
  ) {
    super(
      "MODEL_HASH_MISMATCH",
      `model bytes from ${uri} hash to ${actual}, not the registered id ${modelId}`,
    );
  }
}

// ---------------------------------------------------------------------- chain and client

export class DeploymentNotFoundError extends GradnetError {
  constructor(
    readonly chainId: number,
    readonly file: string,
  ) {
    super("DEPLOYMENT_NOT_FOUND", `no gradnet deployment for chain ${chainId}: ${file} does not exist`);
  }
}

export class ModelNotFoundError extends GradnetError {
  constructor(readonly modelId: string) {
    super("MODEL_NOT_FOUND", `model ${modelId} is not registered, or is deprecated`);
  }
}

export class FeeTooLowError extends GradnetError {
  constructor(
    readonly modelId: string,
    readonly paid: bigint,
    readonly required: bigint,
  ) {
    super("FEE_TOO_LOW", `model ${modelId} costs ${required} wei per call; ${paid} was offered`);
  }
}

/** The request's deadline passed without an answer; its fee is (or can be) refunded. */
export class RequestExpiredError extends GradnetError {
  constructor(
    readonly requestId: bigint,
    readonly deadline: bigint,
    readonly refunded: boolean,
  ) {
    super(
      "REQUEST_EXPIRED",
      `request ${requestId} passed its deadline (${deadline}) unanswered; ` +
        (refunded ? "its fee was refunded" : "call refundExpired to get the fee back"),
    );
  }
}

/** A node answered with an error status; the fee was refunded to the requester. */
export class RequestFailedError extends GradnetError {
  constructor(
    readonly requestId: bigint,
    readonly status: string,
    readonly reason: string,
  ) {
    super("REQUEST_FAILED", `request ${requestId} failed with ${status}: ${reason}`);
  }
}

/** waitForResult gave up locally; the request may still be answered later. */
export class ResultTimeoutError extends GradnetError {
  constructor(
    readonly requestId: bigint,
    readonly waitedMs: number,
  ) {
    super("RESULT_TIMEOUT", `no answer to request ${requestId} within ${waitedMs} ms`);
  }
}

/** A contract call reverted with one of gradnet's custom errors not mapped above. */
export class ContractRevertError extends GradnetError {
  constructor(
    readonly errorName: string,
    readonly args: readonly unknown[],
    options?: { cause?: unknown },
  ) {
    super("CONTRACT_REVERT", `reverted with ${errorName}(${args.map(String).join(", ")})`, options);
  }
}

// ------------------------------------------------------------------------------ batches

/** A batch of results that cannot be built or read: an empty batch, a repeated request id, a bad hash. */
export class InvalidBatchError extends GradnetError {
  constructor(reason: string) {
    super("INVALID_BATCH", `invalid batch: ${reason}`);
  }
}

/** The batch with root `root` holds no result for `requestId`. */
export class BatchLeafNotFoundError extends GradnetError {
  constructor(
    readonly requestId: bigint,
    readonly root: string,
  ) {
    super("BATCH_LEAF_NOT_FOUND", `the batch with root ${root} holds no result for request ${requestId}`);
  }
}

// ---------------------------------------------------------------------- off-chain inference

/**
 * A relayer refused or failed an off-chain request (`POST /inference`) or a proof lookup:
 * `status` is the HTTP status, `code` the relayer's error code (BAD_SIGNATURE, NONCE_USED,
 * INSUFFICIENT_FUNDS, INVALID_INPUT, ...). Nothing was charged.
 */
export class RelayerRequestError extends GradnetError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, `relayer answered ${status} ${code}: ${message}`);
  }
}
