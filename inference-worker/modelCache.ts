/**
 * Models by id: the registry says where the bytes are; the bytes must hash (sha256) to the id
 * or they are refused and never run. Verified bytes are kept on disk; one onnxruntime session
 * per model is created once and reused.
 */
import fs from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-node";
import type { Address, Hex } from "viem";
import type { Logger } from "pino";
import {
  GradnetError,
  ModelHashMismatchError,
  modelRegistryAbi,
  sha256Hex,
  toGradnetError,
  type ModelInfo,
} from "../sdk";
import { fetchBytes } from "./fetch";
import {
  SESSION_OPTIONS,
  localSession,
  specFromRegistry,
  type ModelSession,
  type ModelSpec,
} from "./inference";
import { ThreadSession } from "./threadSession";

export interface LoadedModel {
  spec: ModelSpec;
  session: ModelSession;
}

/** The model's bytes cannot be run as registered: not loadable, or not the promised schema. */
export class ModelSchemaError extends GradnetError {
  constructor(
    readonly modelId: Hex,
    reason: string,
  ) {
    super("MODEL_SCHEMA", `model ${modelId}: ${reason}`);
  }
}

interface ReadClient {
  readContract(args: {
    address: Address;
    abi: typeof modelRegistryAbi;
    functionName: "getModel";
    args: [Hex];
  }): Promise<unknown>;
}

export class ModelCache {
  private readonly loading = new Map<Hex, Promise<LoadedModel>>();
  /** Models whose inference thread died; loaded again on next use. */
  private readonly dead = new Set<Hex>();

  constructor(
    private readonly deps: {
      client: ReadClient;
      modelRegistry: Address;
      cacheDir: string;
      maxModelBytes: number;
      logger: Logger;
      /** Run models in a worker thread (default), so inference never holds the event loop. */
      inThread?: boolean;
    },
  ) {}

  /** Load (once) and return the model. Failed loads are not remembered, so they can be retried. */
  get(modelId: Hex): Promise<LoadedModel> {
    const id = modelId.toLowerCase() as Hex;
    let p = this.loading.get(id);
    if (p !== undefined && this.dead.has(id)) {
      this.dead.delete(id);
      this.loading.delete(id);
      p = undefined;
    }
    if (p === undefined) {
      p = this.load(id).catch((err: unknown) => {
        this.loading.delete(id);
        throw err;
      });
      this.loading.set(id, p);
    }
    return p;
  }

  /** Close every loaded model's session (ends their inference threads). */
  async close(): Promise<void> {
    const loads = [...this.loading.values()];
    this.loading.clear();
    this.dead.clear();
    await Promise.all(
      loads.map(async (p) => {
        const model = await p.catch(() => undefined);
        if (model?.session instanceof ThreadSession) await model.session.close();
      }),
    );
  }

  private async load(modelId: Hex): Promise<LoadedModel> {
    let info: ModelInfo;
    try {
      info = (await this.deps.client.readContract({
        address: this.deps.modelRegistry,
        abi: modelRegistryAbi,
        functionName: "getModel",
        args: [modelId],
      })) as ModelInfo;
    } catch (err) {
      throw toGradnetError(err);
    }
    const bytes = await this.bytesOf(modelId, info.uri);
    let session: ModelSession;
    try {
      session =
        this.deps.inThread === false
          ? localSession(await ort.InferenceSession.create(bytes, SESSION_OPTIONS))
          : await ThreadSession.create(bytes, SESSION_OPTIONS);
    } catch (cause) {
      throw new ModelSchemaError(modelId, `onnxruntime cannot load it: ${(cause as Error).message}`);
    }
    const spec = specFromRegistry(modelId, info.decimals, info.schema);
    const missing = [
      ...spec.inputs.filter((s) => !session.inputNames.includes(s.name)).map((s) => `input ${s.name}`),
      ...spec.outputs.filter((s) => !session.outputNames.includes(s.name)).map((s) => `output ${s.name}`),
    ];
    if (missing.length > 0)
      throw new ModelSchemaError(modelId, `the graph lacks ${missing.join(", ")} from its registered schema`);
    if (session instanceof ThreadSession) {
      session.onDeath((err) => {
        this.deps.logger.error(
          { modelId, err: err.message },
          "inference thread died; the model will be loaded again",
        );
        this.dead.add(modelId);
      });
    }
    this.deps.logger.info({ modelId, uri: info.uri, size: bytes.length }, "model loaded");
    return { spec, session };
  }

  private async bytesOf(modelId: Hex, uri: string): Promise<Uint8Array> {
    const file = path.join(this.deps.cacheDir, `${modelId}.onnx`);
    try {
      const cached = new Uint8Array(await fs.readFile(file));
      if (sha256Hex(cached) === modelId) return cached;
      this.deps.logger.warn({ modelId, file }, "cached model bytes do not match their id; fetching again");
    } catch {
      // not cached yet
    }
    const bytes = await fetchBytes(uri, this.deps.maxModelBytes);
    const actual = sha256Hex(bytes);
    if (actual !== modelId) {
      this.deps.logger.error(
        { modelId, actual, uri },
        "model bytes do not match the registered hash; refusing to run them",
      );
      throw new ModelHashMismatchError(modelId, actual, uri);
    }
    await fs.mkdir(this.deps.cacheDir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
    return bytes;
  }
}
