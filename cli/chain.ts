/**
 * The CLI's adapter to the chain: a public client that has answered once (else an
 * UnreachableError naming the URL), gradnet's addresses on it, and a signer when one is needed.
 */
import {
  createPublicClient,
  createWalletClient,
  http,
  type Account,
  type Chain,
  type PublicClient,
  type WalletClient,
  type Transport,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { DEFAULT_DEPLOYMENTS_DIR, GradnetClient, resolveAddresses, type Addresses } from "../sdk";
import { UnreachableError } from "./errors";
import { signingKey, type Settings } from "./settings";

export const RPC_HINT = "start a devnet with `gradnet devnet`, or pass --rpc <url> of a running node";
const PROBE_TIMEOUT_MS = 5_000;

export interface ChainConnection {
  rpcUrl: string;
  chainId: number;
  chain: Chain;
  publicClient: PublicClient<Transport, Chain>;
  addresses: Addresses;
  /** A read-only client (no wallet). */
  client: GradnetClient;
}

export interface Signer {
  account: Account;
  walletClient: WalletClient<Transport, Chain, Account>;
  /** A client that can send requests. */
  client: GradnetClient;
}

export async function connectChain(settings: Settings): Promise<ChainConnection> {
  const transport = http(settings.rpcUrl, { timeout: 30_000, retryCount: 1 });
  const probe = createPublicClient({
    transport: http(settings.rpcUrl, { timeout: PROBE_TIMEOUT_MS, retryCount: 0 }),
  });
  let chainId: number;
  try {
    chainId = await probe.getChainId();
  } catch (err) {
    throw new UnreachableError("the chain's JSON-RPC endpoint", settings.rpcUrl, RPC_HINT, { cause: err });
  }
  const chain: Chain =
    chainId === hardhat.id ? hardhat : { ...hardhat, id: chainId, name: `chain-${chainId}` };
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 250 });
  const addresses = resolveAddresses(chainId, settings.deploymentsDir ?? DEFAULT_DEPLOYMENTS_DIR);
  return {
    rpcUrl: settings.rpcUrl,
    chainId,
    chain,
    publicClient,
    addresses,
    client: new GradnetClient({ publicClient: publicClient as PublicClient, addresses }),
  };
}

export function signerFor(conn: ChainConnection, settings: Settings, command: string): Signer {
  const account = privateKeyToAccount(signingKey(settings, conn.chainId, command));
  const walletClient = createWalletClient({
    chain: conn.chain,
    transport: http(conn.rpcUrl, { timeout: 30_000 }),
    account,
  });
  return {
    account,
    walletClient,
    client: new GradnetClient({
      publicClient: conn.publicClient as PublicClient,
      walletClient,
      addresses: conn.addresses,
    }),
  };
}
