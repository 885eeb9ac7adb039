/**
 * The whole pipeline on a devnet: 200 requests from the example dApp, answered by two workers,
 * against the chain's own ceiling: 200 request + fulfil pairs sent by a script with the answer
 * precomputed, no off-chain work at all. Same chain, same run.
 *
 *   npm run bench:e2e        (needs Redis, as the devnet does)
 *
 * Latency is from the block holding the request to the block holding its answer, both timed by
 * a block watcher on the wall clock (Hardhat's block timestamps have one-second resolution).
 * Prints one JSON object as its last line.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { Queue } from "bullmq";
import {
  createPublicClient,
  createWalletClient,
  http,
  nonceManager,
  parseEther,
  parseEventLogs,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import {
  FIXED_ADDRESSES,
  Roles,
  classifierConsumerAbi,
  encodeOutput,
  inferenceHubAbi,
  nodeRegistryAbi,
  toFixedPoint,
  type Request,
} from "../sdk";
import { SESSION_OPTIONS, fromOrtOutputs } from "../inference-worker";
import { DEVNET_ROLES, devAccount, freePort, startDevnet } from "../scripts/devnet";

const N = Number(process.env.BENCH_REQUESTS ?? 200);
const BENCH_NODE = 6; // a dev account staked here for the ceiling run

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Wall-clock time at which each block was first seen. */
class BlockClock {
  readonly seen = new Map<bigint, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly client: PublicClient) {}

  start(): void {
    const tick = async () => {
      const n = await this.client.getBlockNumber({ cacheTime: 0 });
      const now = performance.now();
      for (let b = n; b >= 0n && !this.seen.has(b); b--) this.seen.set(b, now);
      this.timer = setTimeout(() => void tick(), 10);
    };
    void tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  async at(block: bigint): Promise<number> {
    for (;;) {
      const t = this.seen.get(block);
      if (t !== undefined) return t;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

function flowers(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => [
    4.4 + (i % 37) * 0.09,
    2.2 + (i % 11) * 0.18,
    1.0 + (i % 53) * 0.11,
    0.1 + (i % 23) * 0.1,
  ]);
}

async function main(): Promise<void> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-bench-e2e-"));
  const devnet = await startDevnet({
    rpcPort: await freePort(),
    relayerPort: await freePort(),
    metricsPorts: [await freePort(), await freePort()],
    stateDir,
    queueName: `gradnet-bench-e2e-${process.pid}`,
    log: (l) => console.error(l),
  });
  const transport = http(devnet.info.rpcUrl);
  const publicClient = createPublicClient({ chain: hardhat, transport, pollingInterval: 50 }) as PublicClient;
  const iris = devnet.info.models.find((m) => m.name === "iris-mlp")!;
  const fee = BigInt(iris.fee);
  const clock = new BlockClock(publicClient);
  clock.start();
  try {
    const user = createWalletClient({
      chain: hardhat,
      transport,
      account: privateKeyToAccount(devAccount(DEVNET_ROLES.user).privateKey, { nonceManager }),
    });
    const classify = (features: number[]) =>
      user.writeContract({
        address: devnet.info.classifier,
        abi: classifierConsumerAbi,
        functionName: "classify",
        args: [features.map((x) => toFixedPoint(x, 6)), 6],
        value: fee,
      });
    const requestOf = (r: TransactionReceipt): Request =>
      parseEventLogs({ abi: inferenceHubAbi, logs: r.logs, eventName: "InferenceRequested" })[0]!.args
        .request as Request;

    // ---------------------------------------------------------------- the pipeline
    const inputs = flowers(N);
    const answered = new Map<bigint, bigint>(); // requestId → block of the answer
    const unwatch = publicClient.watchContractEvent({
      address: FIXED_ADDRESSES.inferenceHub,
      abi: inferenceHubAbi,
      eventName: "InferenceFulfilled",
      pollingInterval: 25,
      onLogs: (logs) => logs.forEach((l) => answered.set(l.args.requestId!, l.blockNumber!)),
    });
    const started = performance.now();
    const hashes: Hex[] = [];
    for (const f of inputs) hashes.push(await classify(f));
    const receipts = await Promise.all(
      hashes.map((hash) => publicClient.waitForTransactionReceipt({ hash })),
    );
    const ids = receipts.map((r) => requestOf(r).requestId);
    while (ids.some((id) => !answered.has(id))) await new Promise((r) => setTimeout(r, 20));
    const lastAnswerBlock = ids.reduce((m, id) => (answered.get(id)! > m ? answered.get(id)! : m), 0n);
    const pipelineSeconds = ((await clock.at(lastAnswerBlock)) - started) / 1000;
    unwatch();
    const latencies = await Promise.all(
      receipts.map(
        async (r, i) => (await clock.at(answered.get(ids[i]!)!)) - (await clock.at(r.blockNumber)),
      ),
    );
    const failed = (
      await Promise.all(
        ids.map((id) =>
          publicClient.readContract({
            address: devnet.info.classifier,
            abi: classifierConsumerAbi,
            functionName: "classifications",
            args: [id],
          }),
        ),
      )
    ).filter(([status, ok]) => !ok || status !== 0).length;
    if (failed > 0) throw new Error(`${failed} requests were not answered with Success`);

    // ---------------------------------------------------------- the chain's ceiling
    // The workers are paused; a staked script node answers with a precomputed output.
    const queue = new Queue(devnet.info.queueName, { connection: { url: devnet.info.redisUrl } });
    await queue.pause();
    const node = createWalletClient({
      chain: hardhat,
      transport,
      account: privateKeyToAccount(devAccount(BENCH_NODE).privateKey, { nonceManager }),
    });
    await publicClient.waitForTransactionReceipt({
      hash: await node.writeContract({
        address: FIXED_ADDRESSES.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: "register",
        args: [Roles.INFERENCE],
        value: parseEther("1"),
      }),
    });
    const fixed = [5.1, 3.5, 1.4, 0.2];
    const session = await ort.InferenceSession.create(
      path.join(__dirname, "..", "models", "iris-mlp.onnx"),
      SESSION_OPTIONS,
    );
    const out = await session.run({ input: new ort.Tensor("float32", Float32Array.from(fixed), [1, 4]) });
    const answer = encodeOutput(fromOrtOutputs(out, session.outputNames), 6);

    const ceilingStarted = performance.now();
    const fulfils: Promise<TransactionReceipt>[] = [];
    const requestHashes: Hex[] = [];
    for (let i = 0; i < N; i++) requestHashes.push(await classify(fixed));
    for (const hash of requestHashes) {
      const r = await publicClient.waitForTransactionReceipt({ hash });
      const h = await node.writeContract({
        address: FIXED_ADDRESSES.inferenceHub,
        abi: inferenceHubAbi,
        functionName: "fulfill",
        args: [requestOf(r), 0, answer.output, answer.outputHash],
      });
      fulfils.push(publicClient.waitForTransactionReceipt({ hash: h }));
    }
    const ceilingReceipts = await Promise.all(fulfils);
    if (ceilingReceipts.some((r) => r.status !== "success")) throw new Error("a ceiling fulfilment reverted");
    const lastCeilingBlock = ceilingReceipts.reduce((m, r) => (r.blockNumber > m ? r.blockNumber : m), 0n);
    const ceilingSeconds = ((await clock.at(lastCeilingBlock)) - ceilingStarted) / 1000;
    await queue.obliterate({ force: true });
    await queue.close();

    const requestsPerSec = N / pipelineSeconds;
    const ceilingPerSec = N / ceilingSeconds;
    const result = {
      bench: "e2e",
      requests: N,
      workers: devnet.info.workers.length,
      requestsPerSec: +requestsPerSec.toFixed(1),
      p50LatencyMs: Math.round(percentile(latencies, 50)),
      p95LatencyMs: Math.round(percentile(latencies, 95)),
      ceilingPairsPerSec: +ceilingPerSec.toFixed(1),
      ratio: +(requestsPerSec / ceilingPerSec).toFixed(3),
      targets: { ratioAtLeast0_8: requestsPerSec / ceilingPerSec >= 0.8 },
    };
    console.log(
      `pipeline: ${N} requests in ${pipelineSeconds.toFixed(2)} s (${result.requestsPerSec}/s), ` +
        `p50 ${result.p50LatencyMs} ms, p95 ${result.p95LatencyMs} ms; ` +
        `ceiling: ${N} request+fulfil pairs in ${ceilingSeconds.toFixed(2)} s (${result.ceilingPairsPerSec}/s)`,
    );
    console.log(JSON.stringify(result));
  } finally {
    clock.stop();
    await devnet.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
