/** gradnet's full node, relayer role: chain watcher → BullMQ, model store, HTTP API. */
export * from "./api";
export * from "./batchPoster";
export * from "./chain";
export * from "./config";
export * from "./keeper";
export * from "./main";
export * from "./metrics";
export * from "./store";
export * from "./watcher";
