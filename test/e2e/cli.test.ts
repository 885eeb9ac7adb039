/**
 * The `gradnet` command end to end, as a person runs it: `gradnet devnet` starts a devnet (own
 * ports, queue and state directory), then the real CLI runs as child processes against it:
 * publish a fresh model, ask it, read the answer back, compare with a direct onnxruntime run,
 * run every example of docs/cli.md, start and stop a worker, and stop the devnet.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { Queue } from "bullmq";
import { keccak256, type Hex } from "viem";
import { decodeTensors, encodeTensors, sha256Hex } from "../../sdk";
import { SESSION_OPTIONS, fromOrtOutputs } from "../../inference-worker";
import { devAccount, freePort, type DevnetInfo } from "../../scripts/devnet";
import { buildMlp } from "../../models/onnx";
import { nest, valueText } from "../../cli/output";
import { docExamples } from "../cli-docs";
import manifest from "../../models/manifest.json";

const ROOT = path.resolve(__dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "gradnet.cjs");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let stateDir: string;
let devnetProc: ChildProcess | undefined;
let devnet: DevnetInfo & { devnetFile: string };
/** The environment every CLI call gets: the test devnet's file, nothing else of ours. */
let env: NodeJS.ProcessEnv;
/** A folder whose `gradnet` is bin/gradnet.cjs, for command lines run by a shell. */
let pathDir: string;

function collect(proc: ChildProcess, timeoutMs: number): Promise<Run> {
  let stdout = "";
  let stderr = "";
  proc.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    proc.once("error", reject);
    proc.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `gradnet <args>` as a child process. */
function gradnet(args: string[], timeoutMs = 60_000): Promise<Run> {
  return collect(spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env }), timeoutMs);
}

/** A command line as a shell runs it, with `gradnet` on the PATH. */
function shell(line: string, cwd: string, timeoutMs = 60_000): Promise<Run> {
  return collect(
    spawn("sh", ["-c", line], { cwd, env: { ...env, PATH: `${pathDir}${path.delimiter}${env.PATH ?? ""}` } }),
    timeoutMs,
  );
}

function explain(r: Run): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** What onnxruntime gives for `rows`, encoded canonically, as a worker must answer. */
async function direct(
  model: string | Uint8Array,
  inputName: string,
  rows: number[][],
  decimals = 6,
): Promise<Hex> {
  const session =
    typeof model === "string"
      ? await ort.InferenceSession.create(model, SESSION_OPTIONS)
      : await ort.InferenceSession.create(model, SESSION_OPTIONS);
  const out = await session.run({
    [inputName]: new ort.Tensor("float32", Float32Array.from(rows.flat()), [rows.length, rows[0]!.length]),
  });
  return encodeTensors(fromOrtOutputs(out, session.outputNames), decimals);
}

before(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-cli-e2e-"));
  pathDir = path.join(stateDir, "bin");
  fs.mkdirSync(pathDir);
  fs.symlinkSync(BIN, path.join(pathDir, "gradnet"));
  env = { ...process.env };
  for (const key of ["GRADNET_RPC_URL", "GRADNET_RELAYER_URL", "GRADNET_PRIVATE_KEY", "GRADNET_DEVNET"])
    delete env[key];

  const devnetDir = path.join(stateDir, "devnet");
  const proc = spawn(
    process.execPath,
    [
      BIN,
      "devnet",
      "--rpc-port",
      String(await freePort()),
      "--relayer-port",
      String(await freePort()),
      "--metrics-ports",
      `${await freePort()},${await freePort()}`,
      "--state-dir",
      devnetDir,
      "--queue",
      `gradnet-cli-e2e-${process.pid}`,
      "--json",
    ],
    { cwd: ROOT, env },
  );
  devnetProc = proc;
  let stdout = "";
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  devnet = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`gradnet devnet not up after 180 s:\n${stderr}`)),
      180_000,
    );
    proc.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      try {
        const info = JSON.parse(stdout) as DevnetInfo & { devnetFile: string };
        clearTimeout(timer);
        resolve(info);
      } catch {
        // not all of it yet
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gradnet devnet exited with ${code}:\n${stderr}`));
    });
  });
  assert.equal(devnet.devnetFile, path.join(devnetDir, "devnet.json"));
  env.GRADNET_DEVNET = devnet.devnetFile;
});

after(async () => {
  if (devnetProc !== undefined && devnetProc.exitCode === null) {
    devnetProc.kill("SIGTERM");
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => (devnetProc!.kill("SIGKILL"), resolve()), 20_000);
      devnetProc!.once("exit", () => (clearTimeout(t), resolve()));
    });
  }
  if (devnet !== undefined) {
    const queue = new Queue(devnet.queueName, { connection: { url: devnet.redisUrl } });
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
  if (stateDir !== undefined) fs.rmSync(stateDir, { recursive: true, force: true });
});

let freshModel: { file: string; bytes: Uint8Array; modelId: Hex };

test("model push uploads and registers a new ONNX model; model list shows it", async () => {
  // Different weights and layout from the demo models, so a new model id.
  const bytes = buildMlp({
    name: "cli_e2e",
    inputName: "features",
    outputName: "scores",
    sizes: [3, 5, 2],
    seed: process.pid,
    batch: "dynamic",
    activation: "Relu",
  });
  const file = path.join(stateDir, "fresh.onnx");
  fs.writeFileSync(file, bytes);
  freshModel = { file, bytes, modelId: sha256Hex(bytes) };

  const pushed = await gradnet(["model", "push", file, "--fee", "0.0002", "--json"]);
  assert.equal(pushed.code, 0, explain(pushed));
  const model = JSON.parse(pushed.stdout) as Record<string, unknown>;
  assert.equal(model.modelId, freshModel.modelId);
  assert.equal(model.alreadyRegistered, false);
  assert.equal(model.fee, "200000000000000");
  assert.equal(model.decimals, 6);
  assert.deepEqual(model.schema, {
    inputs: [{ name: "features", dtype: "float32", shape: [-1, 3] }],
    outputs: [{ name: "scores", dtype: "float32", shape: [-1, 2] }],
  });
  assert.equal(model.uri, `${devnet.relayerUrl}/models/${freshModel.modelId}`);
  assert.match(pushed.stderr, /uploaded .* 100%/);
  // The store serves the bytes back under the URI that was registered.
  const served = Buffer.from(await (await fetch(model.uri as string)).arrayBuffer());
  assert.ok(served.equals(Buffer.from(bytes)));

  const listed = await gradnet(["model", "list", "--json"]);
  assert.equal(listed.code, 0, explain(listed));
  const models = JSON.parse(listed.stdout) as { modelId: Hex; name?: string; schema: unknown }[];
  assert.deepEqual(models.find((m) => m.modelId === freshModel.modelId)?.schema, model.schema);
  // The devnet's models carry their manifest names; the fresh one has none.
  assert.deepEqual(
    models.filter((m) => m.name !== undefined).map((m) => m.name),
    manifest.models.map((m) => m.name),
  );
});

test("infer --wait prints the answer a direct onnxruntime run gives; request show reads it back", async () => {
  const rows = [
    [0.5, -1.25, 2],
    [3, 0, -0.75],
  ];
  const asked = await gradnet([
    "infer",
    freshModel.modelId,
    "--input",
    JSON.stringify({ features: rows }),
    "--wait",
  ]);
  assert.equal(asked.code, 0, explain(asked));
  const requestId = /^requestId +(\d+)$/m.exec(asked.stdout)?.[1];
  const hash = /^outputHash +(0x[0-9a-f]{64})$/m.exec(asked.stdout)?.[1];
  assert.ok(requestId !== undefined && hash !== undefined, asked.stdout);

  const expected = await direct(freshModel.bytes, "features", rows);
  assert.equal(hash, keccak256(expected), "the printed output hash is the hash of the direct run's output");
  const [scores] = decodeTensors(expected);
  const printed = `float32[2, 2]  ${valueText(nest(Array.from(scores!.data as ArrayLike<number>), scores!.shape), "float32")}`;
  assert.ok(asked.stdout.includes(`scores  ${printed}`), `${asked.stdout}\nexpected: scores  ${printed}`);

  const fromRelayer = await gradnet(["request", "show", requestId, "--json"]);
  assert.equal(fromRelayer.code, 0, explain(fromRelayer));
  const view = JSON.parse(fromRelayer.stdout) as {
    source: string;
    state: string;
    modelId: string;
    fulfilment: { output: Hex; outputHash: Hex; status: string };
  };
  assert.equal(view.source, "relayer");
  assert.equal(view.modelId, freshModel.modelId);
  assert.ok(["Fulfilled", "Finalized"].includes(view.state), view.state);
  assert.equal(view.fulfilment.status, "Success");
  assert.equal(view.fulfilment.output, expected);
  assert.equal(view.fulfilment.outputHash, hash);

  const fromChain = await gradnet(["request", "show", requestId, "--chain", "--json"]);
  assert.equal(fromChain.code, 0, explain(fromChain));
  const chainView = JSON.parse(fromChain.stdout) as typeof view;
  assert.equal(chainView.source, "chain");
  assert.deepEqual(chainView.fulfilment, view.fulfilment);
});

test("node status shows a devnet worker staked and active in its role", async () => {
  const worker = devnet.workers[0]!.address;
  const r = await gradnet(["node", "status", worker, "--json"]);
  assert.equal(r.code, 0, explain(r));
  const status = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(status.address, worker);
  assert.equal(status.registered, true);
  assert.equal(status.stake, "1000000000000000000");
  assert.deepEqual(status.roles, ["inference"]);
  assert.deepEqual(status.active, { inference: true });
  assert.equal(status.jailedUntil, "0");
  assert.equal(status.unbonding, "0");
});

test("every example in docs/cli.md runs as documented", async () => {
  const cwd = path.join(stateDir, "docs");
  fs.mkdirSync(cwd);
  // The page's paths are relative to the repository; its files land in a scratch folder.
  fs.symlinkSync(path.join(ROOT, "models"), path.join(cwd, "models"));
  fs.symlinkSync(path.join(ROOT, "README.md"), path.join(cwd, "README.md"));
  /** What a reader is told about particular lines, beyond their exit code. */
  const checks: [string, (r: Run) => Promise<void> | void][] = [
    ["model push README.md", (r) => assert.match(r.stderr, /README\.md is not an ONNX model: /)],
    [
      "[[5.1, 3.5, 1.4]]",
      (r) => assert.match(r.stderr, /input "input": shape \[1, 3\] does not fit \[-1, 4\] at axis 1/),
    ],
    ['"wide"', (r) => assert.match(r.stderr, /input "input": element 3 is "wide", the model takes float32/)],
    ["--bogus", (r) => assert.match(r.stderr, /unknown flag --bogus\nsee: gradnet model list --help/)],
    [
      "--rpc http://127.0.0.1:1",
      (r) =>
        assert.match(
          r.stderr,
          /cannot reach the chain's JSON-RPC endpoint at http:\/\/127\.0\.0\.1:1 .*gradnet devnet/,
        ),
    ],
    ["--roles data --stake 0.1", (r) => assert.match(r.stderr, /reverted with NodeRegistry__\w+\(/)],
    [
      "model push models/tiny-relu.onnx",
      (r) => assert.match(r.stdout, /is already registered; nothing to do/),
    ],
    [
      "--input @flowers.json",
      async (r) => {
        const flowers = JSON.parse(fs.readFileSync(path.join(cwd, "flowers.json"), "utf8")) as {
          data: number[];
        }[];
        const data = flowers[0]!.data;
        const rows = [data.slice(0, 4), data.slice(4, 8)];
        const out = JSON.parse(r.stdout) as { result: { output: Hex; outputHash: Hex } };
        assert.equal(
          out.result.output,
          await direct(path.join(ROOT, "models", "iris-mlp.onnx"), "input", rows),
        );
        assert.equal(out.result.outputHash, keccak256(out.result.output));
      },
    ],
    ["node status 0x3C44", (r) => assert.match(r.stdout, /inference +active/)],
  ];
  const examples = docExamples().filter((e) => !e.skip);
  assert.ok(examples.length >= 15, `docs/cli.md has runnable examples (${examples.length})`);
  for (const example of examples) {
    const r = await shell(example.line, cwd);
    const where = `docs/cli.md:${example.lineNumber}: ${example.line}`;
    assert.equal(r.code, example.expectedExit, `${where}\n${explain(r)}`);
    if (example.expectedExit !== 0) assert.match(r.stderr, /^gradnet[ a-z]*: /, `${where}: an error message`);
    for (const [marker, check] of checks) if (example.line.includes(marker)) await check(r);
  }
  for (const [marker] of checks)
    assert.ok(
      examples.some((e) => e.line.includes(marker)),
      `docs/cli.md still shows "${marker}"`,
    );
});

test("gradnet worker starts from a config file, warns about an unstaked key, stops on SIGTERM", async () => {
  const metricsPort = await freePort();
  const queueName = `gradnet-cli-e2e-worker-${process.pid}`;
  const config = path.join(stateDir, "worker.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      QUEUE_NAME: queueName,
      METRICS_PORT: metricsPort,
      MODEL_CACHE_DIR: path.join(stateDir, "worker-models"),
      LOG_LEVEL: "warn",
    }),
  );
  const proc = spawn(
    process.execPath,
    [BIN, "worker", "--config", config, "--key", devAccount(6).privateKey],
    {
      cwd: ROOT,
      env,
    },
  );
  const done = collect(proc, 90_000);
  try {
    let health: { status?: string; address?: string } = {};
    for (let i = 0; i < 150 && health.status !== "ok" && proc.exitCode === null; i++) {
      await new Promise((r) => setTimeout(r, 200));
      health = await fetch(`http://127.0.0.1:${metricsPort}/health`)
        .then((res) => res.json() as Promise<typeof health>)
        .catch(() => ({}));
    }
    assert.deepEqual(health, { status: "ok", address: devAccount(6).address });
  } finally {
    proc.kill("SIGTERM");
  }
  const r = await done;
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout, new RegExp(`taking jobs from queue "${queueName}"`));
  assert.match(r.stderr, /is not an active inference node/);
  assert.match(r.stderr, /SIGTERM: stopping the worker/);
  const queue = new Queue(queueName, { connection: { url: devnet.redisUrl } });
  await queue.obliterate({ force: true });
  await queue.close();
});

test("npm run gradnet runs the same CLI", async () => {
  const r = await collect(
    spawn("npm", ["run", "--silent", "gradnet", "--", "model", "--help"], { cwd: ROOT, env }),
    60_000,
  );
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout, /Usage: gradnet model <command>/);
});

test("gradnet devnet stops everything it started on SIGTERM", async () => {
  const proc = devnetProc!;
  const exited = new Promise<number | null>((resolve) => proc.once("exit", resolve));
  proc.kill("SIGTERM");
  assert.equal(await exited, 0);
  await assert.rejects(
    fetch(devnet.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
    }),
    "the Hardhat node is gone",
  );
});
