/**
 * The chain writer: one nonce-managed account per worker key posts answers to the hub.
 * A request that another node already answered counts as done; one past its deadline is
 * skipped (it can only be refunded now). Other failures are thrown for the job to retry.
 */
import {
  parseEventLogs,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { decodeRevert, inferenceHubAbi, toGradnetError, type Request } from "../sdk";

export interface Answer {
  request: Request;
  status: number;
  output: Hex;
  outputHash: Hex;
}

export type Outcome = "landed" | "alreadyAnswered" | "expired";

export interface WriteResult {
  txHash?: Hex;
  outcomes: Map<bigint, Outcome>;
}

type AnyPublicClient = PublicClient<Transport, Chain | undefined>;
type AnyWalletClient = WalletClient<Transport, Chain | undefined, Account>;

interface Queued {
  answers: readonly Answer[];
  resolve(r: WriteResult): void;
  reject(e: unknown): void;
}

/**
 * Answers from every job the worker holds go out together: while one transaction is being
 * mined, the answers that arrive meanwhile wait and then leave in one `fulfillBatch` (at most
 * `maxBatch` answers), so a burst of requests costs the chain a few transactions, not one each.
 */
export class ChainWriter {
  private readonly queued: Queued[] = [];
  private sending = false;

  constructor(
    private readonly publicClient: AnyPublicClient,
    private readonly walletClient: AnyWalletClient,
    private readonly hub: Address,
    private readonly maxBatch = 32,
  ) {}

  get address(): Address {
    return this.walletClient.account.address;
  }

  /** Post the answers: one `fulfill`, or one `fulfillBatch` with whatever else is waiting. */
  submit(answers: readonly Answer[]): Promise<WriteResult> {
    if (answers.length === 0) return Promise.resolve({ outcomes: new Map() });
    return new Promise((resolve, reject) => {
      this.queued.push({ answers, resolve, reject });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queued.length > 0) {
        const group: Queued[] = [this.queued.shift()!];
        let size = group[0]!.answers.length;
        while (this.queued.length > 0 && size + this.queued[0]!.answers.length <= this.maxBatch) {
          size += this.queued[0]!.answers.length;
          group.push(this.queued.shift()!);
        }
        const all = group.flatMap((q) => q.answers);
        try {
          const result = all.length === 1 ? await this.submitOne(all[0]!) : await this.submitBatch(all);
          for (const q of group) {
            const outcomes = new Map(
              q.answers.map((a) => [a.request.requestId, result.outcomes.get(a.request.requestId)!]),
            );
            q.resolve({ txHash: result.txHash, outcomes });
          }
        } catch (err) {
          group.forEach((q) => q.reject(err));
        }
      }
    } finally {
      this.sending = false;
    }
  }

  private async submitOne(a: Answer): Promise<WriteResult> {
    const id = a.request.requestId;
    let request;
    try {
      ({ request } = await this.publicClient.simulateContract({
        address: this.hub,
        abi: inferenceHubAbi,
        functionName: "fulfill",
        args: [a.request, a.status, a.output, a.outputHash],
        account: this.walletClient.account,
        chain: this.walletClient.chain,
      }));
    } catch (err) {
      const r = decodeRevert(err);
      if (
        r?.name === "Hub__WrongState" ||
        r?.name === "Hub__AlreadyAnswered" ||
        r?.name === "Hub__AnswersComplete"
      ) {
        return { outcomes: new Map([[id, "alreadyAnswered"]]) };
      }
      if (r?.name === "Hub__RequestExpired") return { outcomes: new Map([[id, "expired"]]) };
      throw toGradnetError(err);
    }
    const txHash = await this.walletClient.writeContract(request);
    await this.confirm(txHash);
    return { txHash, outcomes: new Map([[id, "landed"]]) };
  }

  private async submitBatch(answers: readonly Answer[]): Promise<WriteResult> {
    const items = answers.map((a) => ({
      request: a.request,
      status: a.status,
      output: a.output,
      outputHash: a.outputHash,
    }));
    let request;
    try {
      ({ request } = await this.publicClient.simulateContract({
        address: this.hub,
        abi: inferenceHubAbi,
        functionName: "fulfillBatch",
        args: [items],
        account: this.walletClient.account,
        chain: this.walletClient.chain,
      }));
    } catch (err) {
      throw toGradnetError(err);
    }
    const txHash = await this.walletClient.writeContract(request);
    const receipt = await this.confirm(txHash);
    // The batch skips requests that were no longer pending; the receipt says which landed.
    const fulfilled = parseEventLogs({
      abi: inferenceHubAbi,
      logs: receipt.logs,
      eventName: "InferenceFulfilled",
    });
    const fromHub = (l: { address: string }) => l.address.toLowerCase() === this.hub.toLowerCase();
    const landed = new Set(fulfilled.filter(fromHub).map((l) => l.args.requestId));
    // An answer to a redundant request lands as AnswerSubmitted (the result only once agreed).
    const me = this.walletClient.account.address.toLowerCase();
    for (const l of parseEventLogs({
      abi: inferenceHubAbi,
      logs: receipt.logs,
      eventName: "AnswerSubmitted",
    })) {
      if (fromHub(l) && l.args.node.toLowerCase() === me) landed.add(l.args.requestId);
    }
    const now = (await this.publicClient.getBlock({ blockNumber: receipt.blockNumber })).timestamp;
    const outcomes = new Map<bigint, Outcome>();
    for (const a of answers) {
      const id = a.request.requestId;
      outcomes.set(id, landed.has(id) ? "landed" : now > a.request.deadline ? "expired" : "alreadyAnswered");
    }
    return { txHash, outcomes };
  }

  private async confirm(hash: Hex) {
    const receipt = await this.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`fulfilment transaction ${hash} reverted`);
    return receipt;
  }
}
