/** `gradnet request show <requestId>`: the relayer's view of a request, or the chain's. */
import { GradnetError } from "../../sdk";
import type { RequestView } from "../../node";
import type { Context } from "../context";
import { UnreachableError, UsageError } from "../errors";
import { fields, formatTime, tensorLines } from "../output";
import { relayerGet } from "../relayer";
import { formatAmount } from "../values";

/** Read the request straight from the hub and its events (what the relayer serves). */
async function fromChain(ctx: Context, requestId: bigint): Promise<RequestView> {
  const conn = await ctx.chain();
  const { readRequest, viemHubReader, HttpError } = await import("../../node");
  try {
    return await readRequest(viemHubReader(conn.publicClient, conn.addresses.inferenceHub), requestId);
  } catch (err) {
    if (err instanceof HttpError && err.statusCode === 404)
      throw new GradnetError("UNKNOWN_REQUEST", err.message);
    if (err instanceof HttpError && err.statusCode === 502)
      throw new UnreachableError("the chain's JSON-RPC endpoint", conn.rpcUrl, err.message);
    throw err;
  }
}

export async function show(ctx: Context): Promise<void> {
  const idText = ctx.args.positionals[0]!;
  if (!/^[0-9]{1,78}$/.test(idText))
    throw new UsageError(`a request id is a decimal number; got "${idText}"`, ctx.command);
  const requestId = BigInt(idText);
  let view: RequestView | undefined;
  let source = "chain";
  if (!ctx.bool("chain")) {
    try {
      view = await relayerGet<RequestView>(ctx.settings.relayerUrl, `/requests/${idText}`);
      source = "relayer";
    } catch (err) {
      if (!(err instanceof UnreachableError)) throw err;
      ctx.note(
        `the relayer at ${ctx.settings.relayerUrl} does not answer; reading the chain at ${ctx.settings.rpcUrl}`,
      );
    }
  }
  view ??= await fromChain(ctx, requestId);
  ctx.printJson({ source, ...view });
  ctx.print(renderRequest(view, ctx.settings.devnet?.models ?? []));
}

/** Pure: a request view as text. */
export function renderRequest(
  view: RequestView,
  models: readonly { name: string; modelId: string }[],
): string {
  const name = models.find((m) => m.modelId.toLowerCase() === view.modelId.toLowerCase())?.name;
  const lines = [
    `request ${view.requestId}  ${view.state}`,
    fields(
      [
        ["model", name === undefined ? view.modelId : `${view.modelId} (${name})`],
        ["requester", view.requester],
        ["fee", formatAmount(BigInt(view.fee))],
        ["redundancy", String(view.redundancy)],
        ["deadline", formatTime(BigInt(view.deadline))],
        ["inputHash", view.inputHash],
        ...(view.inputUri === undefined ? [] : [["inputUri", view.inputUri] as const]),
        ["requested", `block ${view.requestBlock}, tx ${view.requestTx}`],
      ],
      "  ",
    ),
  ];
  const f = view.fulfilment;
  if (f !== undefined) {
    lines.push(
      "  answer",
      fields(
        [
          ["node", f.node],
          ["status", f.status],
          ["outputHash", f.outputHash],
          ["callback", f.callbackResult],
          ["fulfilledAt", formatTime(BigInt(f.fulfilledAt))],
          ["fulfilled", `block ${f.block}, tx ${f.tx}`],
          ...(f.reason === undefined ? [] : [["reason", f.reason] as const]),
          ...(f.outputUri === undefined ? [] : [["outputUri", f.outputUri] as const]),
        ],
        "    ",
      ),
    );
    if (f.outputs.length > 0) lines.push("    outputs", tensorLines(f.outputs, "      "));
  }
  if (view.refund !== undefined)
    lines.push(
      `  refunded     ${formatAmount(BigInt(view.refund.fee))} (${view.refund.reason}), block ${view.refund.block}, tx ${view.refund.tx}`,
    );
  if (view.release !== undefined)
    lines.push(
      `  released     ${formatAmount(BigInt(view.release.fee))} to settlement, tx ${view.release.tx}`,
    );
  return lines.join("\n");
}
