/** `gradnet devnet`: the whole local network in one command (what `npm run devnet` runs). */
import net from "node:net";
import path from "node:path";
import { GradnetError } from "../../sdk";
import type { DevnetOptions } from "../../scripts/devnet";
import type { Context } from "../context";
import { UsageError } from "../errors";
import { REPO_ROOT } from "../settings";
import { parseIntFlag } from "../values";

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** Pure: the devnet command's flags → startDevnet's options. */
export function devnetOptions(
  flags: Record<string, string | boolean | undefined>,
  command = "devnet",
): DevnetOptions {
  const port = (name: string) => parseIntFlag(String(flags[name]), name, command, 1, 65535);
  const metrics = String(flags["metrics-ports"]).split(",");
  if (metrics.length !== 2)
    throw new UsageError(
      `--metrics-ports takes two ports, one per worker: 9464,9465; got "${String(flags["metrics-ports"])}"`,
      command,
    );
  const opts: DevnetOptions = {
    rpcPort: port("rpc-port"),
    relayerPort: port("relayer-port"),
    metricsPorts: [
      parseIntFlag(metrics[0]!, "metrics-ports", command, 1, 65535),
      parseIntFlag(metrics[1]!, "metrics-ports", command, 1, 65535),
    ],
    queueName: String(flags.queue),
    verbose: flags.verbose === true,
  };
  if (typeof flags["state-dir"] === "string") opts.stateDir = path.resolve(flags["state-dir"]);
  if (typeof flags.redis === "string") opts.redisUrl = flags.redis;
  return opts;
}

/** Pure: the CLI's lines under the devnet's own summary: where its file is, what to try. */
export function devnetHints(devnetFile: string, defaultFile: string): string[] {
  const env = devnetFile === defaultFile ? "" : `GRADNET_DEVNET=${devnetFile} `;
  return [
    `  devnet file   ${devnetFile}`,
    "",
    "  With the CLI (in another terminal):",
    `    ${env}npx gradnet model list`,
    `    ${env}npx gradnet infer iris-mlp --input '{"input": [[5.1, 3.5, 1.4, 0.2]]}' --wait`,
    "",
  ];
}

export async function devnet(ctx: Context): Promise<void> {
  const opts = devnetOptions(ctx.args.flags, ctx.command);
  const ports: [string, number][] = [
    ["rpc-port", opts.rpcPort!],
    ["relayer-port", opts.relayerPort!],
    ...(opts.metricsPorts ?? []).map((p): [string, number] => ["metrics-ports", p]),
  ];
  for (const [flag, port] of ports) {
    if (!(await portFree(port)))
      throw new UsageError(
        `port ${port} is in use (a devnet already running?); stop what listens there or pass --${flag}`,
        ctx.command,
      );
  }
  const { startDevnet, devnetSummary } = await import("../../scripts/devnet");
  let running;
  try {
    running = await startDevnet({ ...opts, log: (line) => ctx.note(line) });
  } catch (err) {
    const msg = (err as Error).message;
    if (/redis/i.test(msg)) throw new GradnetError("UNREACHABLE", `the devnet did not start: ${msg}`);
    throw new GradnetError("DEVNET_FAILED", `the devnet did not start: ${msg}`, { cause: err });
  }
  const stateDir = opts.stateDir ?? path.join(REPO_ROOT, ".gradnet");
  const devnetFile = path.join(stateDir, "devnet.json");
  ctx.printJson({ ...running.info, devnetFile });
  const defaultFile = path.join(REPO_ROOT, ".gradnet", "devnet.json");
  ctx.print(devnetSummary(running.info, devnetHints(devnetFile, defaultFile)));
  const signal = await ctx.io.untilStopped();
  ctx.note(`${signal}: stopping the devnet`);
  await running.stop();
}
