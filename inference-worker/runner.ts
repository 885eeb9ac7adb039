/**
 * One runner per model: runs are serialised (one `session.run` at a time, as a plain loop would
 * do them), and whatever requests arrive while a run is in progress, from this job or from any
 * other job the worker holds, are run together next time when the model has a batch axis.
 * So the queue's round trips overlap inference instead of adding to it, and small models get
 * batched without anyone waiting on a timer.
 */
import { isBatchable, runBatch, runOne, type EncodedResult, type PreparedTensor } from "./inference";
import type { LoadedModel } from "./modelCache";

interface Pending {
  inputs: PreparedTensor[];
  resolve(r: EncodedResult): void;
  reject(e: unknown): void;
}

export class ModelRunner {
  private readonly pending: Pending[] = [];
  private running = false;
  private readonly batchable: boolean;

  constructor(
    private readonly model: LoadedModel,
    private readonly maxBatch: number,
    private readonly onRun?: (size: number) => void,
  ) {
    this.batchable = isBatchable(model.spec);
  }

  run(inputs: PreparedTensor[]): Promise<EncodedResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ inputs, resolve, reject });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, this.batchable ? this.maxBatch : 1);
        await this.runBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    if (batch.length > 1) {
      try {
        const results = await runBatch(
          this.model.session,
          this.model.spec,
          batch.map((p) => p.inputs),
        );
        this.onRun?.(batch.length);
        batch.forEach((p, i) => p.resolve(results[i]!));
        return;
      } catch {
        // One input may be what the model cannot take: run them one by one to find out.
      }
    }
    for (const p of batch) {
      try {
        const result = await runOne(this.model.session, this.model.spec, p.inputs);
        this.onRun?.(1);
        p.resolve(result);
      } catch (err) {
        p.reject(err);
      }
    }
  }
}
