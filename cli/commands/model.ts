/** `gradnet model push` and `gradnet model list`. */
import fs from "node:fs";
import type { Hex } from "viem";
import {
  ContractRevertError,
  dtypeName,
  modelRegistryAbi,
  sha256Hex,
  toGradnetError,
  type ModelInfo,
} from "../../sdk";
import type { Context } from "../context";
import { InvalidInputError, UsageError } from "../errors";
import { describeOnnx, type OnnxSchema } from "../onnxSchema";
import { fields, formatTime, progressBar, table } from "../output";
import { uploadModel } from "../relayer";
import { formatAmount, parseAmount, parseIntFlag } from "../values";

export const DEFAULT_FEE = "0.001";
export const DEFAULT_DECIMALS = "6";
export const DEFAULT_OWNER_SHARE_BPS = "1000";
const MAX_OWNER_SHARE_BPS = 8000;

/** A model as the CLI shows it (JSON-safe). */
export interface ModelView {
  modelId: Hex;
  name?: string;
  owner: Hex;
  fee: string;
  ownerShareBps: number;
  decimals: number;
  deprecated: boolean;
  registeredAt: string;
  uri: string;
  schema: {
    inputs: { name: string; dtype: string; shape: number[] }[];
    outputs: { name: string; dtype: string; shape: number[] }[];
  };
}

function safeDtype(code: number): string {
  try {
    return dtypeName(code);
  } catch {
    return `code ${code}`;
  }
}

export function modelView(info: ModelInfo, name?: string): ModelView {
  const spec = (s: { name: string; dtype: number; shape: readonly bigint[] }) => ({
    name: s.name,
    dtype: safeDtype(s.dtype),
    shape: s.shape.map(Number),
  });
  return {
    modelId: info.modelId,
    ...(name === undefined ? {} : { name }),
    owner: info.owner,
    fee: info.fee.toString(),
    ownerShareBps: info.ownerShareBps,
    decimals: info.decimals,
    deprecated: info.deprecated,
    registeredAt: info.registeredAt.toString(),
    uri: info.uri,
    schema: { inputs: info.schema.inputs.map(spec), outputs: info.schema.outputs.map(spec) },
  };
}

function tensorText(t: { name: string; dtype: string; shape: number[] }): string {
  return `${t.name}: ${t.dtype}[${t.shape.map((d) => (d === -1 ? "?" : String(d))).join(", ")}]`;
}

function modelFields(v: ModelView, extra: [string, string][] = []): string {
  return fields(
    [
      ["uri", v.uri],
      ["owner", v.owner],
      ["fee", `${formatAmount(BigInt(v.fee))} per call (${v.fee} wei)`],
      ["decimals", String(v.decimals)],
      ["owner share", `${(v.ownerShareBps / 100).toFixed(2)}% (${v.ownerShareBps} bps)`],
      ["inputs", v.schema.inputs.map(tensorText).join(", ")],
      ["outputs", v.schema.outputs.map(tensorText).join(", ")],
      ["registered", formatTime(BigInt(v.registeredAt))],
      ["state", v.deprecated ? "deprecated" : "active"],
      ...extra,
    ],
    "  ",
  );
}

/** Name of a model id in the devnet file, if it has one. */
function devnetName(ctx: Context, modelId: Hex): string | undefined {
  return ctx.settings.devnet?.models?.find((m) => m.modelId.toLowerCase() === modelId.toLowerCase())?.name;
}

async function registeredModel(ctx: Context, modelId: Hex): Promise<ModelInfo | undefined> {
  const conn = await ctx.chain();
  const terms = await conn.publicClient.readContract({
    address: conn.addresses.modelRegistry,
    abi: modelRegistryAbi,
    functionName: "terms",
    args: [modelId],
  });
  return terms.registered ? conn.client.getModel(modelId) : undefined;
}

/** Registration terms: flags, else the model's metadata_props, else the defaults. */
export function registrationTerms(
  flags: { fee?: string; decimals?: string; ownerShareBps?: string },
  metadata: Record<string, string>,
  command = "model push",
): { fee: bigint; decimals: number; ownerShareBps: number } {
  const fee =
    flags.fee !== undefined
      ? parseAmount(flags.fee, "fee", command)
      : metadata["gradnet.fee"] !== undefined
        ? parseAmount(`${metadata["gradnet.fee"]}wei`, "fee (gradnet.fee in the model's metadata)", command)
        : parseAmount(DEFAULT_FEE, "fee", command);
  if (fee >= 1n << 96n) throw new UsageError("--fee does not fit the registry's uint96", command);
  const decimals = parseIntFlag(
    flags.decimals ?? metadata["gradnet.decimals"] ?? DEFAULT_DECIMALS,
    "decimals",
    command,
    0,
    18,
  );
  const ownerShareBps = parseIntFlag(
    flags.ownerShareBps ?? metadata["gradnet.owner_share_bps"] ?? DEFAULT_OWNER_SHARE_BPS,
    "owner-share-bps",
    command,
    0,
    MAX_OWNER_SHARE_BPS,
  );
  return { fee, decimals, ownerShareBps };
}

export async function push(ctx: Context): Promise<void> {
  const file = ctx.args.positionals[0]!;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new InvalidInputError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const { validateOnnx, InvalidOnnxModelError } = await import("../../node");
  try {
    validateOnnx(bytes);
  } catch (err) {
    if (err instanceof InvalidOnnxModelError)
      throw new InvalidInputError(`${file} is not an ONNX model: ${err.reason}`, { cause: err });
    throw err;
  }
  const { schema, metadata } = describeOnnx(bytes);
  const terms = registrationTerms(
    { fee: ctx.flag("fee"), decimals: ctx.flag("decimals"), ownerShareBps: ctx.flag("owner-share-bps") },
    metadata,
  );
  const modelId = sha256Hex(bytes);

  const existing = await registeredModel(ctx, modelId);
  if (existing !== undefined) return reportExisting(ctx, existing);

  const stored = await upload(ctx, bytes);
  if (stored.sha256 !== modelId)
    throw new Error(`the relayer stored the file as ${stored.sha256}, but its sha256 is ${modelId}`);

  const conn = await ctx.chain();
  const signer = await ctx.signer();
  let txHash: Hex;
  try {
    const { request } = await conn.publicClient.simulateContract({
      address: conn.addresses.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "registerModel",
      args: [modelId, stored.uri, toChainSchema(schema), terms.decimals, terms.fee, terms.ownerShareBps],
      account: signer.account,
    });
    txHash = await signer.walletClient.writeContract(request);
  } catch (err) {
    const e = toGradnetError(err);
    // Registered by someone else since the check above: the id is taken, which is what we wanted.
    if (e instanceof ContractRevertError && e.errorName === "ModelRegistry__AlreadyRegistered") {
      const now = await registeredModel(ctx, modelId);
      if (now !== undefined) return reportExisting(ctx, now);
    }
    throw e;
  }
  const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash });
  if (receipt.status !== "success") throw new Error(`registerModel transaction ${txHash} reverted`);
  const view = modelView(await conn.client.getModel(modelId), devnetName(ctx, modelId));
  ctx.printJson({ ...view, alreadyRegistered: false, stored: stored.created, txHash });
  ctx.print(`registered model ${modelId}\n${modelFields(view, [["tx", txHash]])}`);
}

function reportExisting(ctx: Context, info: ModelInfo): void {
  const view = modelView(info, devnetName(ctx, info.modelId));
  ctx.printJson({ ...view, alreadyRegistered: true });
  ctx.print(`model ${info.modelId} is already registered; nothing to do\n${modelFields(view)}`);
}

async function upload(ctx: Context, bytes: Uint8Array) {
  const tty = ctx.io.stderr.isTTY === true;
  let last = -1;
  const url = ctx.settings.relayerUrl;
  const stored = await uploadModel(url, bytes, (sent, total) => {
    if (!tty) return;
    const pct = Math.floor((sent / Math.max(total, 1)) * 100);
    if (pct === last) return;
    last = pct;
    ctx.io.stderr.write(`\ruploading ${progressBar(sent, total)}`);
  });
  ctx.io.stderr.write(
    `${tty ? "\r" : ""}uploaded  ${progressBar(bytes.length, bytes.length)}  to ${url}${stored.created ? "" : " (the store had it already)"}\n`,
  );
  return stored;
}

export function toChainSchema(schema: OnnxSchema) {
  const conv = (t: { name: string; dtype: number; shape: number[] }) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape.map(BigInt),
  });
  return { inputs: schema.inputs.map(conv), outputs: schema.outputs.map(conv) };
}

export async function list(ctx: Context): Promise<void> {
  const conn = await ctx.chain();
  const registry = { address: conn.addresses.modelRegistry, abi: modelRegistryAbi } as const;
  const count = await conn.publicClient.readContract({ ...registry, functionName: "modelCount" });
  const ids = await Promise.all(
    Array.from({ length: Number(count) }, (_, i) =>
      conn.publicClient.readContract({ ...registry, functionName: "modelIdAt", args: [BigInt(i)] }),
    ),
  );
  const models = await Promise.all(
    ids.map(async (id) => modelView(await conn.client.getModel(id), devnetName(ctx, id))),
  );
  ctx.printJson(models);
  if (models.length === 0) return ctx.print("no models registered");
  ctx.print(
    table([
      ["NAME", "MODEL ID", "FEE", "DEC", "STATE", "INPUTS", "OUTPUTS"],
      ...models.map((m) => [
        m.name ?? "-",
        m.modelId,
        formatAmount(BigInt(m.fee)),
        String(m.decimals),
        m.deprecated ? "deprecated" : "active",
        m.schema.inputs.map(tensorText).join(", "),
        m.schema.outputs.map(tensorText).join(", "),
      ]),
    ]),
  );
}
