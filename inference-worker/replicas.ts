/**
 * Redundant requests are answered by `redundancy` distinct nodes, so the relayer queues one job
 * per answer (`<chainId>-<requestId>-r<replica>`). A worker must give at most one of those
 * answers: the guard remembers which redundant requests this worker has taken, asks the chain
 * whether it already answered one (after a restart), and otherwise lets it claim the request.
 * A job the worker may not take goes back to the queue for another worker while the request
 * still wants answers.
 */
import { RequestState } from "../sdk";

/** What the guard needs from the chain. */
export interface ReplicaChain {
  /** This worker's recorded answer to the request, or zero. */
  answerOf(requestId: bigint): Promise<`0x${string}`>;
  requestState(requestId: bigint): Promise<number>;
  /** How many answers the request has so far. */
  answers(requestId: bigint): Promise<number>;
}

export type ReplicaDecision = "answer" | "handBack" | "done";

/** Pure: may another node still answer this request? */
export function wantsMoreAnswers(state: number, answers: number, redundancy: number): boolean {
  const name = RequestState[state];
  return name === "Pending" || (name === "Fulfilled" && answers < redundancy);
}

const ZERO = `0x${"0".repeat(64)}`;

export class ReplicaGuard {
  private readonly taken = new Set<bigint>();

  constructor(
    private readonly chain: ReplicaChain,
    private readonly maxRemembered = 100_000,
  ) {}

  /** "answer": this worker answers; "handBack": another worker must; "done": nothing is left. */
  async claim(requestId: bigint, redundancy: number): Promise<ReplicaDecision> {
    const mine = this.taken.has(requestId) || (await this.chain.answerOf(requestId)) !== ZERO;
    if (!mine) {
      if (this.taken.size >= this.maxRemembered) this.taken.clear(); // the chain still knows
      this.taken.add(requestId);
      return "answer";
    }
    const [state, answers] = await Promise.all([
      this.chain.requestState(requestId),
      this.chain.answers(requestId),
    ]);
    return wantsMoreAnswers(state, answers, redundancy) ? "handBack" : "done";
  }

  /** The answer was not given (the job failed): the worker may try it again. */
  release(requestId: bigint): void {
    this.taken.delete(requestId);
  }
}
