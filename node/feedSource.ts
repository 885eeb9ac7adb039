/**
 * The data node's pure core: what a feed source is (its config schema), how a value is read out
 * of a JSON document and turned into the feed's fixed-point integer without floating point, and
 * which round to report in. No I/O here; node/dataNode.ts wires it to HTTP and the chain.
 */
import type { Hex } from "viem";
import { z } from "zod";
import { GradnetError, MAX_DECIMALS, feedIdOf } from "../sdk";

// ------------------------------------------------------------------------------- errors

/** A source answered, but not with a usable value: says which feed and why. Not retried sooner. */
export class FeedValueError extends GradnetError {
  constructor(
    readonly feed: string,
    readonly reason: string,
  ) {
    super("FEED_VALUE", `feed ${feed}: ${reason}`);
  }
}

// ------------------------------------------------------------------------------- config

const HEX32 = /^0x[0-9a-fA-F]{64}$/;

/** One feed a data node reports, as written in DATA_FEEDS / DATA_FEEDS_FILE. */
export const feedSourceSchema = z
  .object({
    /** The feed's symbol, e.g. "ETH/USD"; its id is keccak256 of it. */
    symbol: z.string().trim().min(1).max(64).optional(),
    /** The feed id, when it is not the hash of a symbol. */
    feedId: z.string().regex(HEX32, "must be 0x followed by 64 hex digits").optional(),
    url: z
      .string()
      .trim()
      .url("must be a URL")
      .refine((s) => ["http:", "https:"].includes(new URL(s).protocol), "must be an http or https URL"),
    /** Where the value sits in the JSON answer: "data.price", "ethereum.usd", "[0].close"; "" = the whole answer. */
    jsonPath: z.string().trim(),
    /** The feed's decimals; optional, and when given it must match the chain's. */
    decimals: z.number().int().min(0).max(MAX_DECIMALS).optional(),
    intervalMs: z.number().int().min(100).max(86_400_000).default(10_000),
    /** Fetch timeout; defaults to the data node's DATA_FETCH_TIMEOUT_MS. */
    timeoutMs: z.number().int().min(1).max(600_000).optional(),
    /** Report late in the last answered round only while it is younger than this; defaults to intervalMs. */
    lateWindowMs: z.number().int().min(0).max(86_400_000).optional(),
    headers: z.record(z.string()).optional(),
  })
  .strict()
  .refine((f) => f.symbol !== undefined || f.feedId !== undefined, {
    message: "needs a symbol or a feedId",
  });

export type FeedSourceInput = z.input<typeof feedSourceSchema>;

/** A feed source, validated and resolved. */
export interface FeedSource {
  /** For logs and metrics: the symbol, else the feed id. */
  name: string;
  feedId: Hex;
  url: string;
  jsonPath: string;
  decimals: number | undefined;
  intervalMs: number;
  timeoutMs: number | undefined;
  lateWindowMs: number;
  headers: Record<string, string>;
}

export const feedSourcesSchema = z
  .array(feedSourceSchema)
  .min(1, "must list at least one feed")
  .transform((feeds, ctx) => {
    const out = feeds.map(toFeedSource);
    const seen = new Set<string>();
    out.forEach((f, i) => {
      if (seen.has(f.feedId))
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: `feed ${f.name} is listed twice` });
      seen.add(f.feedId);
    });
    return out;
  });

function toFeedSource(f: z.output<typeof feedSourceSchema>): FeedSource {
  const byId = f.feedId?.toLowerCase() as Hex | undefined;
  return {
    name: f.symbol ?? byId!,
    feedId: byId ?? feedIdOf(f.symbol!),
    url: f.url,
    jsonPath: f.jsonPath,
    decimals: f.decimals,
    intervalMs: f.intervalMs,
    timeoutMs: f.timeoutMs,
    lateWindowMs: f.lateWindowMs ?? f.intervalMs,
    headers: f.headers ?? {},
  };
}

// --------------------------------------------------------------------------- JSON paths

/** Split "data.items[0].price" into ["data", "items", 0, "price"]. */
export function parseJsonPath(path: string): (string | number)[] {
  const trimmed = path.trim();
  if (trimmed === "") return [];
  const out: (string | number)[] = [];
  for (const part of trimmed.split(".")) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (m === null || (m[1] === "" && m[2] === "")) throw new Error(`bad JSON path "${path}"`);
    if (m[1] !== "") out.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** The value at `path` in a parsed JSON document; throws FeedValueError naming the missing step. */
export function readJsonPath(doc: unknown, path: string, feed = ""): unknown {
  let steps: (string | number)[];
  try {
    steps = parseJsonPath(path);
  } catch (err) {
    throw new FeedValueError(feed, (err as Error).message);
  }
  let at: unknown = doc;
  const walked: string[] = [];
  for (const step of steps) {
    walked.push(typeof step === "number" ? `[${step}]` : step);
    if (Array.isArray(at)) {
      const i = typeof step === "number" ? step : /^\d+$/.test(step) ? Number(step) : NaN;
      at = Number.isInteger(i) ? at[i] : undefined;
    } else if (at !== null && typeof at === "object" && typeof step === "string" && Object.hasOwn(at, step)) {
      at = (at as Record<string, unknown>)[step];
    } else {
      at = undefined;
    }
    if (at === undefined) {
      throw new FeedValueError(feed, `the answer has nothing at ${walked.join(".").replaceAll(".[", "[")}`);
    }
  }
  return at;
}

// ------------------------------------------------------------------------------ scaling

const INT256_MAX = (1n << 255n) - 1n;
const INT256_MIN = -(1n << 255n);
const MAX_EXPONENT = 400;
const DECIMAL = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * A JSON value (a number, or a string holding a decimal number) as the feed's fixed-point
 * integer: `round_half_even(x * 10^decimals)`, computed on the decimal digits so nothing drifts.
 * A JSON number is read back as its shortest decimal form first (`String(x)`), which is the number
 * the source wrote whenever it had at most 15 significant digits; sources that need more send
 * strings.
 */
export function toFeedValue(raw: unknown, decimals: number, feed = ""): bigint {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_DECIMALS)
    throw new FeedValueError(feed, `decimals must be an integer in 0..${MAX_DECIMALS}, got ${decimals}`);
  let text: string;
  if (typeof raw === "number") {
    if (!Number.isFinite(raw)) throw new FeedValueError(feed, `the value is ${raw}`);
    text = String(raw);
  } else if (typeof raw === "string") {
    text = raw.trim();
  } else {
    throw new FeedValueError(feed, `the value is ${raw === null ? "null" : typeof raw}, not a number`);
  }
  const m = DECIMAL.exec(text);
  const intPart = m?.[2] ?? "";
  const fracPart = m?.[3] ?? "";
  if (m === null || intPart + fracPart === "")
    throw new FeedValueError(feed, `"${text.slice(0, 40)}" is not a decimal number`);
  const exponent = Number(m[4] ?? "0");
  if (Math.abs(exponent) > MAX_EXPONENT) throw new FeedValueError(feed, `"${text}" is out of range`);
  const digits = BigInt(intPart + fracPart);
  // value = digits * 10^(exponent - fracPart.length); scaled = value * 10^decimals
  const shift = exponent - fracPart.length + decimals;
  let scaled: bigint;
  if (shift >= 0) {
    scaled = digits * 10n ** BigInt(shift);
  } else {
    const d = 10n ** BigInt(-shift);
    scaled = digits / d;
    const twice = 2n * (digits % d);
    if (twice > d || (twice === d && (scaled & 1n) === 1n)) scaled += 1n;
  }
  const value = m[1] === "-" ? -scaled : scaled;
  if (value > INT256_MAX || value < INT256_MIN)
    throw new FeedValueError(feed, `"${text}" does not fit int256`);
  return value;
}

/** Read a value from a source's JSON text: parse, follow the path, scale. */
export function extractFeedValue(
  body: string,
  source: Pick<FeedSource, "name" | "jsonPath">,
  decimals: number,
): bigint {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new FeedValueError(source.name, `the answer is not JSON: ${JSON.stringify(body.slice(0, 60))}`);
  }
  return toFeedValue(readJsonPath(doc, source.jsonPath, source.name), decimals, source.name);
}

// ------------------------------------------------------------------------------- rounds

/** A round as the contract's `getRound` shows it: bitmaps over reporter slots. */
export interface RoundView {
  roundId: bigint;
  expected: number;
  reported: number;
  /** 0 while the round is open. */
  updatedAt: bigint;
}

/** What a reporter needs to know to pick its round. */
export interface ReporterView {
  latestRoundId: bigint;
  /** Round `latestRoundId`; undefined before the first answer. */
  latest: RoundView | undefined;
  /** Round `latestRoundId + 1` (open, or about to be). */
  open: RoundView;
  listed: boolean;
  slot: number;
  /** The latest block's timestamp, seconds. */
  nowSeconds: bigint;
}

export type RoundChoice =
  | { kind: "late"; roundId: bigint }
  | { kind: "open"; roundId: bigint }
  | { kind: "wait"; reason: "not-listed" | "reported" | "not-expected" };

/**
 * The round to report in now, one report per call:
 * 1. late, in the last answered round, if this reporter was expected there, has not reported
 *    there, and the round was answered within `lateWindowSeconds` (a fresh value compared with an
 *    old median would look like a deviation); this keeps a slower reporter counted in every round;
 * 2. else the open round, if it expects this reporter and it has not reported there;
 * 3. else nothing: it has reported and waits for the quorum (or it was listed after the open
 *    round started).
 * Reads only chain state, so a restarted node never reports twice.
 */
export function chooseRound(view: ReporterView, lateWindowSeconds: bigint): RoundChoice {
  if (!view.listed) return { kind: "wait", reason: "not-listed" };
  const bit = 1 << view.slot;
  const { latest, open } = view;
  if (
    latest !== undefined &&
    (latest.expected & bit) !== 0 &&
    (latest.reported & bit) === 0 &&
    view.nowSeconds - latest.updatedAt <= lateWindowSeconds
  ) {
    return { kind: "late", roundId: view.latestRoundId };
  }
  if ((open.expected & bit) === 0) return { kind: "wait", reason: "not-expected" };
  if ((open.reported & bit) !== 0) return { kind: "wait", reason: "reported" };
  return { kind: "open", roundId: view.latestRoundId + 1n };
}
