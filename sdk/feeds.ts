/** Data feeds: how a feed is named on chain. */
import { keccak256, stringToBytes, type Hex } from "viem";

/** A feed's id on chain: keccak256 of its symbol's UTF-8 bytes (`feedIdOf("ETH/USD")`). */
export function feedIdOf(symbol: string): Hex {
  return keccak256(stringToBytes(symbol));
}
