/**
 * gradnet's full node: the relayer (chain watcher → BullMQ, model store, HTTP API), the
 * settlement keeper, the verifier (re-execution, challenges, dispute votes), off-chain inference
 * with its batch poster, and the data node.
 */
export * from "./api";
export * from "./batchPoster";
export * from "./chain";
export * from "./config";
export * from "./dataConfig";
export * from "./dataNode";
export * from "./feedSource";
export * from "./keeper";
export * from "./main";
export * from "./metrics";
export * from "./offchain";
export * from "./store";
export * from "./verifier";
export * from "./watcher";
