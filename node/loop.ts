/**
 * The background loop that every long-running part of the full node shares (chain watcher,
 * keeper, verifier, feed reporters, batch poster): `start` runs the subclass's `run` once in the
 * background; `stop` asks it to end after its current step, wakes it from its sleep and waits.
 */
export abstract class BackgroundLoop {
  /** Set by `stop`: `run` ends after its current step. */
  protected stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  /** Whether the loop is running. */
  get running(): boolean {
    return this.loop !== undefined;
  }

  /** Start the loop in the background; resolves at once. */
  start(): void {
    if (this.loop !== undefined) return;
    this.stopping = false;
    this.loop = this.run().finally(() => {
      this.loop = undefined;
    });
  }

  /** Stop after the current step; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  /** Cut the current sleep short: the loop takes its next step now. */
  protected nudge(): void {
    this.wake?.();
  }

  /** The loop itself: runs until `stopping`, sleeping with `sleep` between steps. */
  protected abstract run(): Promise<void>;

  /** Wait `ms`, or less when `stop` is called meanwhile. */
  protected sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), ms);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.wake = done;
    });
  }
}
