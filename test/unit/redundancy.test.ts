import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Address, Hex } from "viem";
import { ReplicaGuard, wantsMoreAnswers, type ReplicaChain } from "../../inference-worker";
import { logsToJobs, type RequestedLog } from "../../sdk";

const HUB = "0x0000000000000000000000000000000000000f10" as Address;
const ZERO = `0x${"0".repeat(64)}` as Hex;

function log(id: bigint, redundancy: number, logIndex: number): RequestedLog {
  return {
    request: {
      requestId: id,
      modelId: `0x${"11".repeat(32)}`,
      requester: "0x00000000000000000000000000000000000000b2",
      callbackGasLimit: 0,
      deadline: 2_000_000_000n,
      fee: 3000n,
      inputHash: `0x${"22".repeat(32)}`,
      inputIsRef: false,
      redundancy,
    },
    input: "0x1234",
    blockNumber: 5n,
    txHash: `0x${"aa".repeat(32)}`,
    logIndex,
  };
}

describe("jobs for redundant requests", () => {
  test("one job per answer, each with the request alone; single requests still batch", () => {
    const jobs = logsToJobs(31337, HUB, [log(1n, 1, 0), log(2n, 3, 1), log(3n, 1, 2)]);
    const ids = jobs.map((j) => j.opts.jobId).sort();
    assert.deepEqual(ids, ["31337-1", "31337-2-r0", "31337-2-r1", "31337-2-r2"]);
    const batched = jobs.find((j) => j.opts.jobId === "31337-1")!;
    assert.deepEqual(
      batched.data.items.map((i) => i.request.requestId),
      ["1", "3"],
    );
    for (const j of jobs.filter((j) => j.opts.jobId.startsWith("31337-2-"))) {
      assert.equal(j.data.items.length, 1);
      assert.equal(j.data.items[0]!.request.redundancy, 3);
    }
    // Replaying the same logs makes the same ids, so BullMQ drops the duplicates.
    assert.deepEqual(
      logsToJobs(31337, HUB, [log(2n, 3, 1)]).map((j) => j.opts.jobId),
      ["31337-2-r0", "31337-2-r1", "31337-2-r2"],
    );
  });
});

describe("ReplicaGuard", () => {
  function chain(over: Partial<Record<"answer" | "state" | "answers", unknown>> = {}): ReplicaChain {
    return {
      answerOf: async () => (over.answer as Hex | undefined) ?? ZERO,
      requestState: async () => (over.state as number | undefined) ?? 1,
      answers: async () => (over.answers as number | undefined) ?? 0,
    };
  }

  test("a worker takes one answer of a request and hands the other replicas back", async () => {
    const guard = new ReplicaGuard(chain());
    assert.equal(await guard.claim(9n, 3), "answer");
    assert.equal(await guard.claim(9n, 3), "handBack");
    guard.release(9n);
    assert.equal(await guard.claim(9n, 3), "answer", "a failed answer may be tried again");
  });

  test("after a restart the chain says whether this worker already answered", async () => {
    const answered = `0x${"ee".repeat(32)}` as Hex;
    assert.equal(await new ReplicaGuard(chain({ answer: answered, state: 1 })).claim(9n, 3), "handBack");
    assert.equal(
      await new ReplicaGuard(chain({ answer: answered, state: 2, answers: 3 })).claim(9n, 3),
      "done",
      "all answers are in",
    );
    assert.equal(await new ReplicaGuard(chain({ answer: answered, state: 5 })).claim(9n, 3), "done");
  });

  test("wantsMoreAnswers: pending, or agreed with answers still open", () => {
    assert.equal(wantsMoreAnswers(1, 0, 3), true);
    assert.equal(wantsMoreAnswers(2, 2, 3), true);
    assert.equal(wantsMoreAnswers(2, 3, 3), false);
    for (const ended of [3, 4, 5]) assert.equal(wantsMoreAnswers(ended, 1, 3), false);
  });
});
