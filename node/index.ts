/** gradnet's full node: relayer (chain watcher → BullMQ, model store, HTTP API, keeper) and data node. */
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
export * from "./store";
export * from "./watcher";
