/**
 * `npm run demo`: with `npm run devnet` running, the example dApp asks the Iris classifier
 * about a flower and the answer arrives on chain; then the same question from an EOA through
 * the SDK, with the answer read from the hub's event.
 */
import fs from "node:fs";
import path from "node:path";
import { createPublicClient, createWalletClient, http, parseEventLogs, type Address, type Hex } from "viem";
import { hardhat } from "viem/chains";
import { GradnetClient, classifierConsumerAbi, fromFixedPoint, inferenceHubAbi, toFixedPoint } from "../sdk";
import { DEVNET_ROLES, devAccount, type DevnetInfo } from "./devnet";

const CLASSES = ["setosa", "versicolor", "virginica"];

async function main(): Promise<void> {
  const file = path.resolve(__dirname, "..", ".gradnet", "devnet.json");
  if (!fs.existsSync(file))
    throw new Error("no devnet found: start one with `npm run devnet` in another terminal");
  const info = JSON.parse(fs.readFileSync(file, "utf8")) as DevnetInfo;
  const transport = http(info.rpcUrl);
  const publicClient = createPublicClient({ chain: hardhat, transport, pollingInterval: 200 });
  try {
    await publicClient.getChainId();
  } catch {
    throw new Error(
      `the devnet in ${file} does not answer at ${info.rpcUrl}: is \`npm run devnet\` running?`,
    );
  }
  const user = devAccount(DEVNET_ROLES.user);
  const walletClient = createWalletClient({ chain: hardhat, transport, account: user.account });
  const iris = info.models.find((m) => m.name === "iris-mlp")!;
  const flower = [6.7, 3.0, 5.2, 2.3]; // sepal length, sepal width, petal length, petal width (cm)

  // 1. The dApp contract asks; the worker's answer arrives in its callback.
  console.log(`ClassifierConsumer ${info.classifier} asks ${iris.name} about ${JSON.stringify(flower)}`);
  const started = Date.now();
  const hash = await walletClient.writeContract({
    address: info.classifier as Address,
    abi: classifierConsumerAbi,
    functionName: "classify",
    args: [flower.map((x) => toFixedPoint(x, 6)), 6],
    value: BigInt(iris.fee),
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  const [requested] = parseEventLogs({
    abi: inferenceHubAbi,
    logs: receipt.logs,
    eventName: "InferenceRequested",
  });
  const requestId = requested!.args.requestId;
  console.log(`  request ${requestId} mined in block ${receipt.blockNumber}; waiting for the callback…`);
  for (;;) {
    const [status, answered, label, score, outputHash] = await publicClient.readContract({
      address: info.classifier as Address,
      abi: classifierConsumerAbi,
      functionName: "classifications",
      args: [requestId],
    });
    if (answered) {
      console.log(
        `  answered on chain in ${Date.now() - started} ms: ${CLASSES[label]} (p = ${fromFixedPoint(score, 6)}), ` +
          `status ${["Success", "SuccessOffchain", "InvalidInput", "InputUnavailable", "ModelFailed"][status]}, outputHash ${outputHash}`,
      );
      break;
    }
    if (Date.now() - started > 60_000)
      throw new Error("no answer within 60 s; see the worker logs in " + info.logsDir);
    await new Promise((r) => setTimeout(r, 200));
  }

  // 2. An EOA asks through the SDK and reads the answer from the hub's event.
  const client = new GradnetClient({ publicClient, walletClient });
  const sent = await client.requestInference({
    modelId: iris.modelId as Hex,
    inputs: [{ name: "input", dtype: "float32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
  });
  const result = await client.waitForResult(sent.requestId, { timeoutMs: 60_000 });
  const probs = result.outputs.find((t) => t.name === "probabilities")!.data as number[];
  const label = result.outputs.find((t) => t.name === "label")!.data[0] as bigint;
  console.log(
    `SDK request ${sent.requestId}: ${CLASSES[Number(label)]} with probabilities ${probs.join(", ")}; ` +
      `answered by ${result.node}, outputHash ${result.outputHash}`,
  );
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
