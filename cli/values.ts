/**
 * Pure parsers for flag values: amounts of ETH, integers in a range, node roles. Each throws a
 * UsageError naming the flag and what it takes.
 */
import { formatEther, parseEther, parseGwei } from "viem";
import { Roles } from "../sdk";
import { UsageError } from "./errors";

/** `1.5` or `1.5eth` → ether; `2gwei`; `1000wei` → wei. */
export function parseAmount(text: string, flag: string, command: string): bigint {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(eth|ether|gwei|wei)?\s*$/i.exec(text);
  if (m === null)
    throw new UsageError(
      `--${flag} takes an amount: ETH (1.5), or with a unit (2gwei, 1000wei); got "${text}"`,
      command,
    );
  const [, num, unit = "eth"] = m;
  const u = unit.toLowerCase();
  if (u === "wei") {
    if (num!.includes(".")) throw new UsageError(`--${flag}: wei are whole; got "${text}"`, command);
    return BigInt(num!);
  }
  try {
    return u === "gwei" ? parseGwei(num!) : parseEther(num!);
  } catch {
    throw new UsageError(`--${flag}: "${text}" is not an amount`, command);
  }
}

/** Wei as ETH for people: `0.001 ETH`. */
export function formatAmount(wei: bigint): string {
  return `${formatEther(wei)} ETH`;
}

export function parseIntFlag(text: string, flag: string, command: string, min: number, max: number): number {
  const n = /^-?[0-9]+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`--${flag} takes an integer from ${min} to ${max}; got "${text}"`, command);
  return n;
}

const ROLE_BITS: Record<string, number> = {
  inference: Roles.INFERENCE,
  verifier: Roles.VERIFIER,
  data: Roles.DATA,
};
export const ROLE_NAMES = Object.keys(ROLE_BITS);

/** `inference,verifier` → the NodeRegistry's role bits (3). */
export function parseRoles(text: string, command: string): number {
  let mask = 0;
  for (const part of text.split(",").map((s) => s.trim().toLowerCase())) {
    const bit = ROLE_BITS[part];
    if (bit === undefined)
      throw new UsageError(`--roles: unknown role "${part}"; roles are ${ROLE_NAMES.join(", ")}`, command);
    mask |= bit;
  }
  return mask;
}

/** Role bits → their names, in a fixed order. */
export function roleNames(mask: number): string[] {
  return Object.entries(ROLE_BITS)
    .filter(([, bit]) => (mask & bit) !== 0)
    .map(([name]) => name);
}
