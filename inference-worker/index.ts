/** gradnet's inference worker: the public surface other programs (tests, the devnet) use. */
export { parseWorkerConfig, workerConfigSchema, ConfigError, type WorkerConfig } from "./config";
export { startWorker, type RunningWorker } from "./main";
export * from "./inference";
export {
  computeAnswer,
  fetchCommittedInput,
  InputHashMismatchError,
  type ComputedAnswer,
  type ComputeOptions,
} from "./answer";
export { corruptOutput } from "./fault";
export { ModelCache, ModelSchemaError, type LoadedModel } from "./modelCache";
export { ModelRunner } from "./runner";
export { ThreadSession } from "./threadSession";
export { processJob, type JobSummary, type ProcessorDeps } from "./processor";
export { ChainWriter, type Answer, type Outcome } from "./writer";
export { WorkerMetrics } from "./metrics";
export { fetchBytes, FetchError } from "./fetch";
export { ReplicaGuard, wantsMoreAnswers, type ReplicaChain, type ReplicaDecision } from "./replicas";
