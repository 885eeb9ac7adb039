/**
 * gradnet's full node: the relayer (chain watcher → BullMQ, model store, HTTP API), the
 * settlement keeper and the verifier (re-execution, challenges, dispute votes).
 */
export * from "./api";
export * from "./chain";
export * from "./config";
export * from "./keeper";
export * from "./main";
export * from "./metrics";
export * from "./store";
export * from "./verifier";
export * from "./watcher";
