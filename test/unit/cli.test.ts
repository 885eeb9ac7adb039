/**
 * The CLI's pure parts: arguments and help, JSON input → tensors and the schema check, the
 * schema read from ONNX files, settings, and the one mapping from errors to exit codes. Commands
 * that need no chain run in-process through `main`.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { BaseError, HttpRequestError, parseEther, type Hex } from "viem";
import {
  ContractRevertError,
  DeploymentNotFoundError,
  FeeTooLowError,
  InputSchemaError,
  ModelNotFoundError,
  RequestExpiredError,
  RequestFailedError,
  ResultTimeoutError,
  TensorEncodingError,
} from "../../sdk";
import { ConfigError, workerConfigSchema } from "../../inference-worker";
import { devAccount, DEVNET_ROLES } from "../../scripts/devnet";
import { GLOBAL_FLAGS, parseCommandArgs, resolveCommand } from "../../cli/args";
import { COMMANDS } from "../../cli/commands";
import { checkedInputs, readInputText, resolveModelId } from "../../cli/commands/infer";
import { registrationTerms, toChainSchema } from "../../cli/commands/model";
import { renderStatus } from "../../cli/commands/node";
import { parseWorkerConfigFile, workerEnv } from "../../cli/commands/worker";
import { devnetOptions } from "../../cli/commands/devnet";
import type { Io } from "../../cli/context";
import { EXIT, InvalidInputError, RelayerError, UnreachableError, UsageError } from "../../cli/errors";
import { describeError } from "../../cli/failure";
import { uploadModel } from "../../cli/relayer";
import { inferShape, parseJsonText, tensorsFromJson, type InputSpec } from "../../cli/input";
import { EXIT_CODES, main } from "../../cli/main";
import { describeOnnx } from "../../cli/onnxSchema";
import { nest, progressBar, valueText } from "../../cli/output";
import { devnetUserKey, resolveSettings, type DevnetFile } from "../../cli/settings";
import { formatAmount, parseAmount, parseIntFlag, parseRoles, roleNames } from "../../cli/values";
import { WORKER_CONFIG_KEYS, workerDefaultText, workerFlagName } from "../../cli/workerFlags";
import { makeModel, node, serializeModel, valueInfo, type DataTypeId } from "../../models/onnx";
import manifest from "../../models/manifest.json";
import { buildApi, createMetrics, ModelStore, type HubReader } from "../../node";
import pino from "pino";
import { commandWords, docExamples } from "../cli-docs";

const ROOT = path.resolve(__dirname, "..", "..");
const IRIS = fs.readFileSync(path.join(ROOT, "models", "iris-mlp.onnx"));
const TINY = fs.readFileSync(path.join(ROOT, "models", "tiny-relu.onnx"));
const iris = manifest.models.find((m) => m.name === "iris-mlp")!;
const tiny = manifest.models.find((m) => m.name === "tiny-relu")!;
const sha256Of = (b: Uint8Array) => `0x${createHash("sha256").update(b).digest("hex")}`;
const IRIS_INPUTS: InputSpec[] = [{ name: "input", dtype: 1, shape: [-1, 4] }];

/** An empty devnet file, so no devnet running on this machine changes what the tests see. */
const SCRATCH = fs.mkdtempSync(path.join(os.tmpdir(), "gradnet-cli-unit-"));
after(() => fs.rmSync(SCRATCH, { recursive: true, force: true }));
const NO_DEVNET = path.join(SCRATCH, "devnet.json");
fs.writeFileSync(NO_DEVNET, "{}");

/** Run the CLI in-process with captured output. */
async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { GRADNET_DEVNET: NO_DEVNET, ...env },
    untilStopped: () => new Promise(() => undefined),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UsageError, `a UsageError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("expected a UsageError");
}

describe("arguments", () => {
  const infer = COMMANDS.find((c) => c.path.join(" ") === "infer")!;
  const push = COMMANDS.find((c) => c.path.join(" ") === "model push")!;

  test("the command is the longest run of leading words that names one", () => {
    const r = resolveCommand(COMMANDS, ["model", "push", "m.onnx", "--fee", "1"]);
    assert.equal(r.kind, "command");
    assert.deepEqual(r.kind === "command" && r.command.path, ["model", "push"]);
    assert.deepEqual(r.args, ["m.onnx", "--fee", "1"]);
    const g = resolveCommand(COMMANDS, ["--rpc", "http://x:1", "infer", "iris-mlp", "--wait"]);
    assert.equal(g.kind === "command" && g.command.path.join(" "), "infer");
    assert.deepEqual(
      g.args,
      ["--rpc", "http://x:1", "iris-mlp", "--wait"],
      "global flags before the command are kept",
    );
    assert.equal(resolveCommand(COMMANDS, ["model"]).kind, "group");
    assert.equal(resolveCommand(COMMANDS, []).kind, "root");
    assert.match(
      usageMessage(() => resolveCommand(COMMANDS, ["modle"])),
      /unknown command "modle"/,
    );
    assert.match(
      usageMessage(() => resolveCommand(COMMANDS, ["model", "pull"])),
      /unknown command "model pull"/,
    );
  });

  test("flags parse strictly: an unknown flag, a missing value or argument is named", () => {
    const parsed = parseCommandArgs(infer, ["iris-mlp", "--input", "{}", "-w", "--json"]);
    assert.deepEqual(parsed.positionals, ["iris-mlp"]);
    assert.equal(parsed.flags.input, "{}");
    assert.equal(parsed.flags.wait, true);
    assert.equal(parsed.flags.json, true);
    assert.equal(parsed.flags.timeout, "120", "defaults are applied");
    assert.equal(parsed.flags.redundancy, "1");
    assert.equal(parsed.flags.fee, undefined);

    assert.equal(
      usageMessage(() => parseCommandArgs(infer, ["iris-mlp", "--inptu", "{}"])),
      "unknown flag --inptu",
    );
    assert.match(
      usageMessage(() => parseCommandArgs(infer, ["iris-mlp", "--input"])),
      /flag --input needs a value/,
    );
    assert.match(
      usageMessage(() => parseCommandArgs(infer, ["iris-mlp", "--wait=yes"])),
      /--wait takes no value/,
    );
    assert.equal(
      usageMessage(() => parseCommandArgs(push, [])),
      "missing <file.onnx>",
    );
    assert.equal(
      usageMessage(() => parseCommandArgs(push, ["a.onnx", "b.onnx"])),
      'unexpected argument "b.onnx"',
    );
    // --help needs no arguments.
    assert.equal(parseCommandArgs(push, ["--help"]).help, true);
  });

  test("every command's --help exits 0 and lists its flags with their defaults", async () => {
    for (const command of COMMANDS) {
      const { code, stdout } = await run([...command.path, "--help"]);
      assert.equal(code, 0, command.path.join(" "));
      assert.ok(stdout.startsWith(`Usage: gradnet ${command.path.join(" ")}`), stdout);
      for (const [name, flag] of Object.entries({ ...GLOBAL_FLAGS, ...(command.flags ?? {}) })) {
        const line = stdout.split("\n").find((l) => new RegExp(`^ +(-\\w, )?--${name}(?![\\w-])`).test(l));
        assert.ok(line !== undefined, `${command.path.join(" ")} --help lists --${name}`);
        const def = flag.default ?? flag.defaultText;
        if (def !== undefined) assert.ok(line.includes(`(default: ${def})`), line);
      }
    }
    const groups = await run(["node", "--help"]);
    assert.equal(groups.code, 0);
    assert.match(groups.stdout, /node register/);
    assert.match(groups.stdout, /node status/);
  });

  test("the root help lists every command and the exit codes; no command is a usage error", async () => {
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    for (const c of COMMANDS) assert.ok(help.stdout.includes(`  ${c.path.join(" ")}  `), c.path.join(" "));
    for (const [code, meaning] of EXIT_CODES) assert.ok(help.stdout.includes(`  ${code}  ${meaning}`));
    const bare = await run([]);
    assert.equal(bare.code, EXIT.USAGE);
    assert.match(bare.stderr, /Usage: gradnet <command>/);
  });

  test("a wrong flag exits 2 with the flag and the command's --help", async () => {
    const r = await run(["model", "list", "--bogus"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "gradnet model list: unknown flag --bogus\nsee: gradnet model list --help\n");
    const j = await run(["model", "list", "--bogus", "--json"]);
    assert.deepEqual(JSON.parse(j.stderr), {
      error: "USAGE",
      exitCode: 2,
      message: "unknown flag --bogus\nsee: gradnet model list --help",
    });
  });

  test("every command docs/cli.md names exists, and its --help exits 0", async () => {
    const examples = docExamples();
    const named = examples.map((e) => commandWords(e.line)).filter((w) => w !== undefined);
    assert.ok(named.length >= 15, `docs/cli.md shows commands (${named.length})`);
    const covered = new Set<string>();
    for (const words of named) {
      const r = resolveCommand(COMMANDS, words);
      if (r.kind === "root") continue;
      assert.equal(r.kind, "command", `docs/cli.md: "gradnet ${words.join(" ")}" is a command`);
      const path = r.kind === "command" ? r.command.path : [];
      covered.add(path.join(" "));
      const { code } = await run([...path, "--help"]);
      assert.equal(code, 0);
    }
    for (const c of COMMANDS)
      assert.ok(covered.has(c.path.join(" ")), `docs/cli.md shows gradnet ${c.path.join(" ")}`);
  });
});

describe("values", () => {
  test("amounts are ETH unless they name gwei or wei", () => {
    assert.equal(parseAmount("1.5", "stake", "node register"), parseEther("1.5"));
    assert.equal(parseAmount("0.001eth", "fee", "x"), 10n ** 15n);
    assert.equal(parseAmount("2gwei", "fee", "x"), 2n * 10n ** 9n);
    assert.equal(parseAmount("1000wei", "fee", "x"), 1000n);
    assert.match(
      usageMessage(() => parseAmount("1.5wei", "fee", "x")),
      /wei are whole/,
    );
    assert.match(
      usageMessage(() => parseAmount("-1", "fee", "x")),
      /--fee takes an amount/,
    );
    assert.match(
      usageMessage(() => parseAmount("lots", "stake", "x")),
      /--stake takes an amount/,
    );
    assert.equal(formatAmount(10n ** 15n), "0.001 ETH");
  });

  test("integers in range, roles by name", () => {
    assert.equal(parseIntFlag("7", "redundancy", "infer", 1, 7), 7);
    assert.match(
      usageMessage(() => parseIntFlag("8", "redundancy", "infer", 1, 7)),
      /from 1 to 7; got "8"/,
    );
    assert.match(
      usageMessage(() => parseIntFlag("1.5", "decimals", "x", 0, 18)),
      /integer/,
    );
    assert.equal(parseRoles("inference,verifier", "x"), 3);
    assert.equal(parseRoles("DATA", "x"), 4);
    assert.deepEqual(roleNames(7), ["inference", "verifier", "data"]);
    assert.match(
      usageMessage(() => parseRoles("inference,miner", "x")),
      /unknown role "miner"/,
    );
  });
});

describe("JSON input → tensors", () => {
  test("shapes come from the nesting and dtypes from the schema", () => {
    const [t] = tensorsFromJson({ input: [[5.1, 3.5, 1.4, 0.2]] }, IRIS_INPUTS);
    assert.deepEqual(t, { name: "input", dtype: "float32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] });
    const [a] = tensorsFromJson(
      [{ name: "input", shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] }],
      IRIS_INPUTS,
    );
    assert.deepEqual(a!.shape, [2, 4]);
    const [n] = tensorsFromJson([{ name: "input", data: [[1, 2, 3, 4]] }], IRIS_INPUTS);
    assert.deepEqual(n!.shape, [1, 4]);
    const ints = tensorsFromJson({ ids: [["9007199254740993", 2]] }, [
      { name: "ids", dtype: 7, shape: [1, 2] },
    ]);
    assert.deepEqual(ints[0]!.data, [9007199254740993n, 2n], "int64 beyond 2^53 as decimal strings");
    assert.deepEqual(inferShape("s", 3), { shape: [], flat: [3] }, "a scalar");
    assert.deepEqual(inferShape("e", [[], []]).shape, [2, 0]);
  });

  test("errors name the tensor and say why", () => {
    const message = (json: unknown, specs = IRIS_INPUTS) => {
      try {
        tensorsFromJson(json, specs);
      } catch (err) {
        assert.ok(err instanceof InputSchemaError || err instanceof InvalidInputError, String(err));
        return err.message;
      }
      assert.fail("expected an error");
    };
    assert.match(
      message({ input: [[1, 2], [3]] }),
      /^input "input": ragged nesting: element \[1\] has 1 entries/,
    );
    assert.match(message({ input: [[1, 2], 3] }), /^input "input": ragged nesting: element \[1\] is a value/);
    assert.match(
      message({ input: [[1, "x", 3, 4]] }),
      /^input "input": element 1 is "x", the model takes float32/,
    );
    assert.match(
      message({ inputs: [[1, 2, 3, 4]] }),
      /^input "inputs": the model has no input of this name \(inputs: input\)/,
    );
    assert.equal(message({}), 'input "input": missing');
    assert.match(
      message([{ name: "input", shape: [2, 2], data: [1, 2, 3] }]),
      /"shape" \[2, 2\] holds 4 elements, "data" has 3/,
    );
    assert.match(
      message([{ name: "input", dtype: "int64", data: [[1, 2, 3, 4]] }]),
      /dtype int64 given, the model takes float32/,
    );
    assert.match(message(42), /must be a JSON object/);
    assert.match(
      message({ b: [true, 2] }, [{ name: "b", dtype: 9, shape: [2] }]),
      /element 1 is 2, the model takes bool/,
    );
    assert.throws(() => parseJsonText("{", "--input"), /--input is not valid JSON/);
  });

  test("the worker's schema check runs before sending: rank, size, and encodability", async () => {
    const model = { modelId: iris.sha256 as Hex, decimals: 6, schema: toChainSchema(iris.schema) };
    const ok = await checkedInputs({ input: [[5.1, 3.5, 1.4, 0.2]] }, model, 6);
    assert.deepEqual(ok[0]!.shape, [1, 4]);
    await assert.rejects(checkedInputs({ input: [[5.1, 3.5, 1.4]] }, model, 6), {
      name: "InputSchemaError",
      message: 'input "input": shape [1, 3] does not fit [-1, 4] at axis 1',
    });
    await assert.rejects(checkedInputs({ input: [5.1, 3.5, 1.4, 0.2] }, model, 6), {
      message: 'input "input": shape [4] has rank 1, the model takes [-1, 4]',
    });
    await assert.rejects(checkedInputs({ input: [[1e300, 1, 1, 1]] }, model, 6), {
      name: "InputSchemaError",
      message: 'input "input": element 0 overflows float32',
    });
  });

  test("--input is JSON text, @file, or a path that exists", () => {
    const file = path.join(SCRATCH, "in.json");
    fs.writeFileSync(file, '{"input": [[1, 2, 3, 4]]}');
    assert.deepEqual(readInputText('{"a": 1}'), { text: '{"a": 1}', what: "--input" });
    assert.deepEqual(readInputText(`@${file}`), { text: '{"input": [[1, 2, 3, 4]]}', what: file });
    assert.deepEqual(readInputText(file), { text: '{"input": [[1, 2, 3, 4]]}', what: file });
    assert.throws(
      () => readInputText("@/no/such/file.json"),
      /cannot read the input file \/no\/such\/file.json: ENOENT/,
    );
    assert.throws(
      () => parseJsonText(readInputText("no-such-file.json").text, "--input"),
      /--input is not valid JSON/,
    );
  });

  test("a model is named by its id or by the devnet's name for it", () => {
    const devnet: DevnetFile = {
      models: [{ name: "iris-mlp", modelId: iris.sha256 as Hex, uri: "", fee: "1" }],
    };
    assert.equal(resolveModelId("iris-mlp", devnet), iris.sha256);
    assert.equal(resolveModelId(tiny.sha256.toUpperCase().replace("0X", "0x"), undefined), tiny.sha256);
    assert.throws(
      () => resolveModelId("iris", devnet),
      /"iris" is not a model id .* the devnet's models: iris-mlp/,
    );
  });
});

describe("the schema read from an ONNX graph", () => {
  test("iris-mlp and tiny-relu read as their manifest schema (initializers are not inputs)", () => {
    assert.deepEqual(describeOnnx(IRIS).schema, iris.schema);
    assert.deepEqual(describeOnnx(TINY).schema, tiny.schema);
  });

  test("metadata_props give registration terms; flags win; defaults otherwise", () => {
    const graph = {
      name: "id",
      nodes: [node("Identity", ["x"], ["y"])],
      inputs: [valueInfo("x", 1, ["n", 2])],
      outputs: [valueInfo("y", 1, ["n", 2])],
    };
    const bytes = serializeModel(graph, {
      metadata: { "gradnet.fee": "5000", "gradnet.decimals": "4", "gradnet.owner_share_bps": "2500" },
    });
    const { schema, metadata } = describeOnnx(bytes);
    assert.deepEqual(schema.inputs, [{ name: "x", dtype: 1, shape: [-1, 2] }]);
    assert.deepEqual(registrationTerms({}, metadata), { fee: 5000n, decimals: 4, ownerShareBps: 2500 });
    assert.deepEqual(registrationTerms({ fee: "1gwei", decimals: "2" }, metadata), {
      fee: 10n ** 9n,
      decimals: 2,
      ownerShareBps: 2500,
    });
    assert.deepEqual(registrationTerms({}, {}), { fee: 10n ** 15n, decimals: 6, ownerShareBps: 1000 });
    assert.match(
      usageMessage(() => registrationTerms({ ownerShareBps: "9000" }, {})),
      /0 to 8000/,
    );
  });

  test("a tensor type gradnet cannot carry is refused with the tensor's name", () => {
    const FLOAT16 = 10 as DataTypeId;
    const bytes = serializeModel(
      makeModel({
        name: "half",
        nodes: [node("Identity", ["h"], ["o"])],
        inputs: [valueInfo("h", FLOAT16, [1])],
        outputs: [valueInfo("o", FLOAT16, [1])],
      }),
    );
    assert.throws(() => describeOnnx(bytes), {
      name: "InvalidInputError",
      message:
        'input "h" has ONNX element type FLOAT16 (10); gradnet carries float, int32, int64, string, bool, double',
    });
    assert.throws(() => describeOnnx(Buffer.from("hello, not a model")), /not an ONNX model/);
  });
});

describe("errors → exit codes", () => {
  const cases: [unknown, number, RegExp?][] = [
    [new UsageError("unknown flag --x", "infer"), EXIT.USAGE, /see: gradnet infer --help/],
    [new ConfigError("CONCURRENCY", "Expected number"), EXIT.USAGE],
    [new InvalidInputError("x.txt is not an ONNX model: bad"), EXIT.INVALID],
    [new InputSchemaError("input", "missing"), EXIT.INVALID, /input "input": missing/],
    [new TensorEncodingError("bad", "t"), EXIT.INVALID],
    [new ModelNotFoundError("0x01"), EXIT.INVALID],
    [new RelayerError(400, "INVALID_ONNX_MODEL", "not a usable ONNX model"), EXIT.INVALID],
    [new RelayerError(404, "UNKNOWN_REQUEST", "request 9 does not exist"), EXIT.INVALID],
    [
      new UnreachableError("the relayer", "http://127.0.0.1:8080", "start it"),
      EXIT.UNREACHABLE,
      /127\.0\.0\.1:8080/,
    ],
    [new DeploymentNotFoundError(5, "deployments/5.json"), EXIT.UNREACHABLE],
    [new RelayerError(502, "CHAIN_UNAVAILABLE", "rpc down"), EXIT.UNREACHABLE],
    [
      new ContractRevertError("NodeRegistry__AlreadyRegistered", ["0xabc"]),
      EXIT.REVERTED,
      /AlreadyRegistered\(0xabc\)/,
    ],
    [new FeeTooLowError("0x01", 1n, 2n), EXIT.REVERTED],
    [new ResultTimeoutError(3n, 1000), EXIT.TIMEOUT],
    [new RequestExpiredError(3n, 10n, true), EXIT.TIMEOUT],
    [new RequestFailedError(3n, "InvalidInput", 'input "x": missing'), EXIT.REQUEST_FAILED],
    [new Error("boom"), EXIT.UNEXPECTED, /boom\n\(an unexpected error; set GRADNET_DEBUG=1/],
  ];
  for (const [err, code, message] of cases) {
    test(`${(err as Error).constructor.name} ${(err as { code?: string }).code ?? ""} → ${code}`, () => {
      const f = describeError(err);
      assert.equal(f.exitCode, code);
      if (message !== undefined) assert.match(f.message, message);
    });
  }

  test("a refused connection anywhere in a viem error's causes is exit 4", () => {
    const cause = Object.assign(new TypeError("fetch failed"), {
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }),
    });
    const err = new HttpRequestError({ url: "http://127.0.0.1:9", cause });
    assert.ok(err instanceof BaseError);
    assert.equal(describeError(err).exitCode, EXIT.UNREACHABLE);
    assert.match(
      new UnreachableError("the relayer", "http://127.0.0.1:9", "start it", { cause: err }).message,
      /cannot reach the relayer at http:\/\/127\.0\.0\.1:9 \(connection refused\); start it/,
    );
  });

  test("an RPC that refuses connections is exit 4, naming the URL and how to start one", async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const r = await run(["model", "list", "--rpc", `http://127.0.0.1:${port}`]);
    assert.equal(r.code, EXIT.UNREACHABLE);
    assert.match(
      r.stderr,
      new RegExp(`cannot reach the chain's JSON-RPC endpoint at http://127.0.0.1:${port}`),
    );
    assert.match(r.stderr, /connection refused/);
    assert.match(r.stderr, /gradnet devnet/);
  });
});

describe("settings", () => {
  test("flags over environment over the devnet file over defaults", () => {
    const devnet: DevnetFile = {
      rpcUrl: "http://127.0.0.1:18545",
      relayerUrl: "http://127.0.0.1:18080",
      deploymentsDir: "/d",
    };
    const fromFile = resolveSettings({}, {}, devnet);
    assert.equal(fromFile.rpcUrl, "http://127.0.0.1:18545");
    assert.equal(fromFile.relayerUrl, "http://127.0.0.1:18080");
    assert.equal(fromFile.deploymentsDir, "/d");
    const fromEnv = resolveSettings(
      {},
      { GRADNET_RPC_URL: "http://a:1", GRADNET_RELAYER_URL: "http://b:2/" },
      devnet,
    );
    assert.equal(fromEnv.rpcUrl, "http://a:1");
    assert.equal(fromEnv.relayerUrl, "http://b:2");
    assert.equal(fromEnv.deploymentsDir, undefined, "another chain than the devnet file's");
    const fromFlags = resolveSettings(
      { rpc: "http://c:3", json: true },
      { GRADNET_RPC_URL: "http://a:1" },
      devnet,
    );
    assert.equal(fromFlags.rpcUrl, "http://c:3");
    assert.equal(fromFlags.json, true);
    const defaults = resolveSettings({}, {}, undefined);
    assert.equal(defaults.rpcUrl, "http://127.0.0.1:8545");
    assert.equal(defaults.relayerUrl, "http://127.0.0.1:8080");
    assert.equal(defaults.key, undefined);
  });

  test("a malformed key or URL is a usage error that does not echo the key", () => {
    const secret = "0x1234";
    const msg = usageMessage(() => resolveSettings({ key: secret }, {}, undefined));
    assert.equal(msg, "--key must be 0x followed by 64 hex digits");
    assert.match(
      usageMessage(() => resolveSettings({}, { GRADNET_PRIVATE_KEY: "nope" }, undefined)),
      /^GRADNET_PRIVATE_KEY/,
    );
    assert.match(
      usageMessage(() => resolveSettings({ rpc: "localhost:8545" }, {}, undefined)),
      /--rpc must be an http/,
    );
  });

  test("the default key on the devnet is the devnet's user account", () => {
    assert.equal(devnetUserKey(), devAccount(DEVNET_ROLES.user).privateKey);
  });
});

describe("worker settings", () => {
  test("the CLI's worker flags are the worker config's settings, with its defaults", () => {
    assert.deepEqual([...WORKER_CONFIG_KEYS].sort(), Object.keys(workerConfigSchema.shape).sort());
    const parsed = workerConfigSchema.parse({ WORKER_PRIVATE_KEY: `0x${"1".repeat(64)}` });
    for (const key of [
      "CONCURRENCY",
      "MAX_BATCH",
      "MAX_INPUT_BYTES",
      "POLL_INTERVAL_MS",
      "METRICS_HOST",
      "METRICS_PORT",
      "LOG_LEVEL",
    ] as const) {
      assert.equal(workerDefaultText(key), String(parsed[key]), key);
    }
    assert.equal(workerDefaultText("MODEL_CACHE_DIR"), parsed.MODEL_CACHE_DIR);
    const worker = COMMANDS.find((c) => c.path[0] === "worker")!;
    for (const key of WORKER_CONFIG_KEYS) assert.ok(worker.flags![workerFlagName(key)], key);
  });

  test("a config file is a JSON object of the worker's variable names", () => {
    assert.deepEqual(parseWorkerConfigFile('{"CONCURRENCY": 4, "QUEUE_NAME": "q"}', "w.json"), {
      CONCURRENCY: "4",
      QUEUE_NAME: "q",
    });
    assert.match(
      usageMessage(() => parseWorkerConfigFile('{"CONCURENCY": 4}', "w.json")),
      /unknown setting "CONCURENCY"/,
    );
    assert.throws(() => parseWorkerConfigFile("[1]", "w.json"), /must be a JSON object/);
    assert.throws(() => parseWorkerConfigFile("{", "w.json"), /not valid JSON/);
  });

  test("layers: devnet file < environment < config file < --rpc/--key", () => {
    const env = workerEnv({
      devnet: {
        rpcUrl: "http://dev:1",
        redisUrl: "redis://dev:2",
        queueName: "devq",
        deploymentsDir: "/dev",
      },
      env: { QUEUE_NAME: "envq", CONCURRENCY: "3", GRADNET_PRIVATE_KEY: "0xenv" },
      file: { CONCURRENCY: "5", REDIS_URL: "redis://file:3" },
      rpc: "http://flag:4",
    });
    assert.deepEqual(env, {
      RPC_URL: "http://flag:4",
      REDIS_URL: "redis://file:3",
      QUEUE_NAME: "envq",
      DEPLOYMENTS_DIR: "/dev",
      WORKER_PRIVATE_KEY: "0xenv",
      CONCURRENCY: "5",
    });
  });
});

describe("output", () => {
  test("row-major data nests by shape; integers print unquoted", () => {
    assert.deepEqual(nest([1, 2, 3, 4, 5, 6], [2, 3]), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.equal(nest([7], []), 7);
    assert.equal(valueText(nest([1n, 2n], [1, 2]), "int64"), "[[1, 2]]");
    assert.equal(valueText(nest(["12"], [1]), "int64"), "[12]");
    assert.equal(valueText(["a b"], "string"), '["a b"]');
  });

  test("the progress bar", () => {
    assert.equal(progressBar(0, 2048, 10), "[..........]   0%  0 B / 2.0 KiB");
    assert.equal(progressBar(1024, 2048, 10), "[#####.....]  50%  1.0 KiB / 2.0 KiB");
    assert.equal(progressBar(2048, 2048, 10), "[##########] 100%  2.0 KiB / 2.0 KiB");
  });

  test("node status text", () => {
    const text = renderStatus(
      {
        address: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        registered: true,
        stake: parseEther("1").toString(),
        roles: ["inference", "verifier"],
        active: { inference: true, verifier: false },
        jailedUntil: "2000",
        unbonding: "0",
        unbondingReleaseAt: "0",
        registeredAt: "1000",
      },
      1500,
    );
    assert.match(text, /stake +1 ETH/);
    assert.match(text, /inference +active/);
    assert.match(text, /verifier +inactive/);
    assert.match(text, /jailed +until 1970-01-01T00:33:20Z/);
    assert.match(text, /unbonding +none/);
  });

  test("devnet flags", () => {
    assert.deepEqual(
      devnetOptions({
        "rpc-port": "1",
        "relayer-port": "2",
        "metrics-ports": "3,4",
        queue: "q",
        verbose: true,
      }),
      { rpcPort: 1, relayerPort: 2, metricsPorts: [3, 4], queueName: "q", verbose: true },
    );
    assert.match(
      usageMessage(() =>
        devnetOptions({ "rpc-port": "1", "relayer-port": "2", "metrics-ports": "3", queue: "q" }),
      ),
      /two ports/,
    );
  });
});

describe("model upload", () => {
  test("streams the file to the relayer's store, reporting progress, and maps its refusals", async () => {
    const store = new ModelStore(path.join(SCRATCH, "store"));
    await store.init();
    const unused = () => Promise.reject(new Error("not used by /models"));
    const app = await buildApi({
      chainId: 31337,
      reader: { hub: "0x0000000000000000000000000000000000000f10" } as unknown as HubReader,
      store,
      queue: { getJobCounts: unused },
      redis: { ping: unused },
      watcher: {
        stats: {
          running: true,
          head: undefined,
          checkpoint: undefined,
          lagBlocks: undefined,
          blocksProcessed: 0,
          requestsQueued: 0,
          jobsQueued: 0,
          rpcErrors: 0,
          queueErrors: 0,
          consecutiveFailures: 0,
          lastError: undefined,
          checkpointAhead: false,
        },
      },
      metrics: createMetrics({ defaultMetrics: false }),
      logger: pino({ level: "silent" }),
      maxModelBytes: 256 * 1024,
      publicUrl: () => "http://relayer.test",
    });
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      // Big enough to go out in several chunks.
      const big = serializeModel(
        makeModel(
          {
            name: "padded",
            nodes: [node("Identity", ["x"], ["y"])],
            inputs: [valueInfo("x", 1, [1])],
            outputs: [valueInfo("y", 1, [1])],
          },
          { docString: "x".repeat(200_000) },
        ),
      );
      const progress: number[] = [];
      const stored = await uploadModel(`${base}/`, big, (sent, total) => {
        assert.equal(total, big.length);
        progress.push(sent);
      });
      assert.equal(stored.sha256, sha256Of(big));
      assert.equal(stored.uri, `http://relayer.test/models/${stored.sha256}`);
      assert.equal(stored.created, true);
      assert.ok(progress.length >= 4, `progress reported per chunk (${progress.length})`);
      assert.deepEqual(
        [...progress].sort((a, b) => a - b),
        progress,
        "progress only grows",
      );
      assert.equal(progress[0], 0);
      assert.equal(progress.at(-1), big.length);
      assert.ok((await store.get(stored.sha256))!.equals(Buffer.from(big)));
      assert.equal(
        (await uploadModel(base, big, () => undefined)).created,
        false,
        "the second upload finds it",
      );

      const refused = (bytes: Uint8Array) =>
        uploadModel(base, bytes, () => undefined).then(
          () => assert.fail("expected a refusal"),
          (err: unknown) => describeError(err),
        );
      const text = await refused(Buffer.from("not a model at all\n"));
      assert.equal(text.exitCode, EXIT.INVALID);
      assert.match(text.message, /the relayer answered 400 INVALID_ONNX_MODEL: not a usable ONNX model/);
      const tooBig = await refused(new Uint8Array(300 * 1024));
      assert.equal(tooBig.exitCode, EXIT.INVALID);
      assert.match(tooBig.message, /413/);
    } finally {
      await app.close();
    }
    const closed = await uploadModel(base, TINY, () => undefined).then(
      () => assert.fail("expected the closed relayer to be unreachable"),
      (err: unknown) => describeError(err),
    );
    assert.equal(closed.exitCode, EXIT.UNREACHABLE);
    assert.match(closed.message, /cannot reach the relayer at .* \(connection refused\)/);
  });
});
