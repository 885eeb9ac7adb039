/** `gradnet infer <model> --input <json|@file> [--wait]`. */
import fs from "node:fs";
import type { Hex } from "viem";
import { ModelNotFoundError, toWire, type ModelInfo, type NamedTensor } from "../../sdk";
import type { Context } from "../context";
import { InvalidInputError, UsageError } from "../errors";
import { parseJsonText, tensorsFromJson } from "../input";
import { fields, tensorJson, tensorLines } from "../output";
import type { DevnetFile } from "../settings";
import { formatAmount, parseAmount, parseIntFlag } from "../values";

const MODEL_ID = /^0x[0-9a-fA-F]{64}$/;

/** A model id, or the name of one of the devnet's models. */
export function resolveModelId(arg: string, devnet: DevnetFile | undefined): Hex {
  if (MODEL_ID.test(arg)) return arg.toLowerCase() as Hex;
  const models = devnet?.models ?? [];
  const found = models.find((m) => m.name === arg);
  if (found !== undefined) return found.modelId;
  const known = models.length > 0 ? `; the devnet's models: ${models.map((m) => m.name).join(", ")}` : "";
  throw new InvalidInputError(
    `"${arg}" is not a model id (0x + 64 hex digits) nor a known model name${known}`,
  );
}

/** The --input value: JSON text, or a JSON file as `@path` (or a plain path that exists). */
export function readInputText(value: string): { text: string; what: string } {
  const trimmed = value.trim();
  const isFile = value.startsWith("@") || (!/^[[{]/.test(trimmed) && fs.existsSync(value));
  if (!isFile) return { text: value, what: "--input" };
  const file = value.startsWith("@") ? value.slice(1) : value;
  try {
    return { text: fs.readFileSync(file, "utf8"), what: file };
  } catch (err) {
    throw new InvalidInputError(
      `cannot read the input file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/**
 * JSON input → the model's input tensors, checked with the worker's own schema check (the one that
 * would answer InvalidInput), so a request the worker would refuse is never paid for.
 */
export async function checkedInputs(
  json: unknown,
  model: Pick<ModelInfo, "modelId" | "decimals" | "schema">,
  inputDecimals: number,
): Promise<NamedTensor[]> {
  const { specFromRegistry, prepareInputs } = await import("../../inference-worker");
  const spec = specFromRegistry(model.modelId, model.decimals, model.schema);
  const tensors = tensorsFromJson(json, spec.inputs);
  prepareInputs(
    spec,
    tensors.map((t) => toWire(t, inputDecimals)),
  );
  return tensors;
}

export async function infer(ctx: Context): Promise<void> {
  const command = ctx.command;
  const input = ctx.flag("input");
  if (input === undefined)
    throw new UsageError(`--input is required: '<json>' or --input @file.json`, command);
  const redundancy = parseIntFlag(ctx.flag("redundancy")!, "redundancy", command, 1, 7);
  const inputDecimals = parseIntFlag(ctx.flag("input-decimals")!, "input-decimals", command, 0, 18);
  const timeoutS = parseIntFlag(ctx.flag("timeout")!, "timeout", command, 1, 86_400);
  const feeText = ctx.flag("fee");
  const fee = feeText === undefined ? undefined : parseAmount(feeText, "fee", command);
  const { text, what } = readInputText(input);
  const json = parseJsonText(text, what);
  const modelId = resolveModelId(ctx.args.positionals[0]!, ctx.settings.devnet);

  const conn = await ctx.chain();
  const model = await conn.client.getModel(modelId);
  if (model.deprecated) throw new ModelNotFoundError(modelId);
  const tensors = await checkedInputs(json, model, inputDecimals);

  const signer = await ctx.signer();
  const sent = await signer.client.requestInference({
    modelId,
    inputs: tensors,
    inputDecimals,
    redundancy,
    fee,
  });
  const paid = sent.request.fee;
  const summary = {
    requestId: sent.requestId.toString(),
    modelId,
    requester: signer.account.address,
    fee: paid.toString(),
    redundancy,
    txHash: sent.txHash,
  };
  ctx.print(
    fields([
      ["requestId", summary.requestId],
      ["tx", sent.txHash],
      ["fee", formatAmount(paid)],
    ]),
  );
  if (!ctx.bool("wait")) {
    ctx.printJson(summary);
    return;
  }
  if (!ctx.json) ctx.note(`waiting up to ${timeoutS} s for the answer to request ${summary.requestId}...`);
  const result = await signer.client.waitForResult(sent.requestId, {
    timeoutMs: timeoutS * 1000,
    pollIntervalMs: 250,
    fromBlock: sent.blockNumber,
  });
  ctx.printJson({
    ...summary,
    result: {
      status: result.status,
      node: result.node,
      outputHash: result.outputHash,
      output: result.output,
      outputs: result.outputs.map(tensorJson),
      callbackResult: result.callbackResult,
      fulfilledAt: result.fulfilledAt.toString(),
      txHash: result.txHash,
    },
  });
  ctx.print(
    [
      fields([
        ["status", result.status],
        ["node", result.node],
        ["outputHash", result.outputHash],
      ]),
      result.status === "Success"
        ? `outputs\n${tensorLines(result.outputs)}`
        : `output      ${result.output}`,
    ].join("\n"),
  );
}
