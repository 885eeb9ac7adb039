/**
 * The command table: every command's words, flags, help and examples, and the function that
 * runs it (loaded only when that command runs, so --help stays fast).
 */
import type { CommandSpec } from "./args";
import type { Context } from "./context";
import { workerFlagSpecs } from "./workerFlags";

export interface Command extends CommandSpec {
  run(ctx: Context): Promise<void>;
}

export const COMMANDS: readonly Command[] = [
  {
    path: ["devnet"],
    summary: "start a local gradnet: chain, contracts, relayer, keeper, 2 workers, demo models",
    description:
      "Runs until Ctrl-C, which stops every process it started. It writes what runs where to\n" +
      "<state dir>/devnet.json, which the other commands read for their defaults\n" +
      "(set GRADNET_DEVNET=<file> when --state-dir is not the default).",
    flags: {
      "rpc-port": {
        type: "string",
        valueName: "port",
        default: "8545",
        description: "the Hardhat node's port",
      },
      "relayer-port": {
        type: "string",
        valueName: "port",
        default: "8080",
        description: "the relayer's HTTP port",
      },
      "metrics-ports": {
        type: "string",
        valueName: "a,b",
        default: "9464,9465",
        description: "the two workers' metrics ports",
      },
      "state-dir": {
        type: "string",
        valueName: "dir",
        description: "where deployments, the model store, caches, logs and devnet.json go",
        defaultText: ".gradnet in the repository",
      },
      queue: {
        type: "string",
        valueName: "name",
        default: "gradnet-inference",
        description: "BullMQ queue name",
      },
      redis: {
        type: "string",
        valueName: "url",
        description: "Redis to use",
        defaultText: "$REDIS_URL, else redis://127.0.0.1:6379, started with redis-server if none answers",
      },
      verbose: { type: "boolean", description: "stream every process's logs here instead of log files" },
    },
    examples: [
      "gradnet devnet",
      "gradnet devnet --rpc-port 9545 --relayer-port 9080 --state-dir /tmp/gradnet",
    ],
    run: async (ctx) => (await import("./commands/devnet")).devnet(ctx),
  },
  {
    path: ["model", "push"],
    summary: "upload an ONNX model to the relayer's store and register it on chain",
    description:
      "The schema (input and output names, element types, shapes; symbolic axes as -1) is read\n" +
      "from the ONNX graph. Fee, decimals and owner share come from the flags, else from the\n" +
      "model's metadata_props gradnet.fee (wei), gradnet.decimals and gradnet.owner_share_bps,\n" +
      "else the defaults below. A model already registered (same bytes, same id) is reported, not\n" +
      "registered again. The model id is the sha256 of the file.",
    positionals: [
      { name: "file.onnx", description: "the ONNX model; all weights inside it (no external data)" },
    ],
    flags: {
      fee: {
        type: "string",
        valueName: "amount",
        description: "fee per call: ETH (0.001), or with a unit (2gwei, 1000wei)",
        defaultText: "gradnet.fee, else 0.001",
      },
      decimals: {
        type: "string",
        valueName: "n",
        description: "fixed-point decimals of float outputs (0..18)",
        defaultText: "gradnet.decimals, else 6",
      },
      "owner-share-bps": {
        type: "string",
        valueName: "bps",
        description: "the model owner's share of each fee, in basis points (0..8000)",
        defaultText: "gradnet.owner_share_bps, else 1000",
      },
    },
    examples: [
      "gradnet model push models/tiny-relu.onnx",
      "gradnet model push my-model.onnx --fee 0.0005 --decimals 4",
    ],
    run: async (ctx) => (await import("./commands/model")).push(ctx),
  },
  {
    path: ["model", "list"],
    summary: "list the models in the ModelRegistry",
    examples: ["gradnet model list", "gradnet model list --json"],
    run: async (ctx) => (await import("./commands/model")).list(ctx),
  },
  {
    path: ["infer"],
    summary: "ask a model: send an inference request, optionally wait for the answer",
    description:
      'The input is JSON: {"<input name>": <nested arrays>} or [{"name", "data", "shape"?}].\n' +
      "Shapes come from the nesting and element types from the model's schema; the input is\n" +
      "checked against the schema before anything is sent. Floats travel with --input-decimals.\n" +
      "Prints the request id; with --wait, the decoded outputs and the output hash.",
    positionals: [
      { name: "model", description: "a model id (0x + 64 hex digits), or a devnet model's name (iris-mlp)" },
    ],
    flags: {
      input: {
        type: "string",
        short: "i",
        valueName: "json|@file",
        description: "the input: JSON text, or a JSON file (@path, or a path) (required)",
      },
      wait: { type: "boolean", short: "w", description: "wait for the answer and print it" },
      timeout: { type: "string", valueName: "seconds", default: "120", description: "how long --wait waits" },
      redundancy: {
        type: "string",
        valueName: "k",
        default: "1",
        description: "distinct nodes that answer (1..7); the result is what most of them agree on",
      },
      fee: {
        type: "string",
        valueName: "amount",
        description: "what to pay: ETH, or with a unit (2gwei, 1000wei)",
        defaultText: "the model's fee times --redundancy",
      },
      "input-decimals": {
        type: "string",
        valueName: "n",
        default: "6",
        description: "fixed-point decimals of float inputs on chain",
      },
    },
    examples: [
      `gradnet infer iris-mlp --input '{"input": [[5.1, 3.5, 1.4, 0.2]]}' --wait`,
      "gradnet infer 0xfecc38abedbf25e74cc90abd777425be1855ad0f3ba94fa26b578d5df9d13a7e --input @input.json",
    ],
    run: async (ctx) => (await import("./commands/infer")).infer(ctx),
  },
  {
    path: ["request", "show"],
    summary: "show a request: state, parameters, the answer and its outputs, refund or release",
    description:
      "Reads the relayer's GET /requests/<id>; when the relayer does not answer (or with --chain)\n" +
      "it reads the same from the hub and its events through the RPC.",
    positionals: [{ name: "requestId", description: "the request's decimal id" }],
    flags: { chain: { type: "boolean", description: "read the chain directly, not the relayer" } },
    examples: ["gradnet request show 1", "gradnet request show 1 --chain --json"],
    run: async (ctx) => (await import("./commands/request")).show(ctx),
  },
  {
    path: ["node", "register"],
    summary: "stake and register the signing account as a node (inference, verifier, data)",
    flags: {
      roles: {
        type: "string",
        valueName: "list",
        default: "inference",
        description: "comma-separated roles: inference, verifier, data",
      },
      stake: {
        type: "string",
        valueName: "amount",
        description: "stake to bond: ETH (1.5), or with a unit",
        defaultText: "the largest minimum stake of the roles",
      },
    },
    examples: ["gradnet node register --roles inference,verifier --stake 2"],
    run: async (ctx) => (await import("./commands/node")).register(ctx),
  },
  {
    path: ["node", "status"],
    summary: "a node's stake, roles, whether it is active in each, jail and unbonding",
    positionals: [
      { name: "address", optional: true, description: "the node (default: the signing account, see --key)" },
    ],
    examples: ["gradnet node status", "gradnet node status 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"],
    run: async (ctx) => (await import("./commands/node")).status(ctx),
  },
  {
    path: ["worker"],
    summary: "run an inference worker (config file, environment or flags) until Ctrl-C",
    description:
      "Settings, strongest first: the flags below; --rpc and --key; the --config file (a JSON\n" +
      "object keyed by the variable names in brackets); the environment (the same names); the\n" +
      "devnet file (RPC, Redis, queue, deployments). Logs go to stderr as JSON (pino).",
    flags: {
      config: { type: "string", valueName: "file.json", description: "a JSON file of worker settings" },
      ...workerFlagSpecs(),
    },
    examples: ["gradnet worker --config worker.json", "gradnet worker --concurrency 4 --metrics-port 9470"],
    run: async (ctx) => (await import("./commands/worker")).worker(ctx),
  },
];
