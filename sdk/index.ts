/** gradnet's TypeScript SDK: every other part of gradnet imports from here. */
export * from "./abis";
export * from "./addresses";
export * from "./client";
export * from "./errors";
export * from "./feeds";
export * from "./protocol";
export * from "./tensor";
export * from "./jobs";
export * from "./batch";
export * from "./offchain";
