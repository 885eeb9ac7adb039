/** A model session that lives in a worker thread (see ort-thread.cjs); same maths, free event loop. */
import path from "node:path";
import { Worker } from "node:worker_threads";
import type * as ort from "onnxruntime-node";
import type { ModelSession, OutputTensor, PreparedTensor } from "./inference";

type Message =
  | { kind: "ready"; inputNames: string[]; outputNames: string[] }
  | { kind: "failed"; message: string }
  | { kind: "result"; id: number; outputs: Record<string, OutputTensor> }
  | { kind: "error"; id: number; message: string };

export class ThreadSession implements ModelSession {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve(o: Record<string, OutputTensor>): void; reject(e: Error): void }
  >();
  private dead: Error | undefined;
  private readonly deathListeners: ((err: Error) => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {
    worker.on("message", (m: Message) => {
      if (m.kind !== "result" && m.kind !== "error") return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.kind === "result") p?.resolve(m.outputs);
      else p?.reject(new Error(m.message));
    });
    const die = (err: Error) => {
      if (this.dead !== undefined) return;
      this.dead = err;
      this.deathListeners.forEach((f) => f(err));
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on("error", die);
    worker.on("exit", (code) => die(new Error(`the inference thread exited (code ${code})`)));
  }

  /** Load `bytes` in a new thread. Rejects with onnxruntime's message if it cannot load them. */
  static create(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ThreadSession> {
    const worker = new Worker(path.join(__dirname, "ort-thread.cjs"), { workerData: { bytes, options } });
    return new Promise((resolve, reject) => {
      const onMessage = (m: Message) => {
        if (m.kind === "ready") {
          worker.off("message", onMessage);
          resolve(new ThreadSession(worker, m.inputNames, m.outputNames));
        } else if (m.kind === "failed") {
          worker.off("message", onMessage);
          void worker.terminate();
          reject(new Error(m.message));
        }
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });
  }

  onDeath(listener: (err: Error) => void): void {
    this.deathListeners.push(listener);
  }

  /** False once the thread has died; the model cache then loads the model again. */
  get alive(): boolean {
    return this.dead === undefined;
  }

  run(feeds: readonly PreparedTensor[]): Promise<Record<string, OutputTensor>> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, feeds });
    });
  }

  async close(): Promise<void> {
    this.dead ??= new Error("the session was closed");
    await this.worker.terminate();
  }
}
