/** `gradnet node register` and `gradnet node status`: a node's stake and roles in the NodeRegistry. */
import { getAddress, isAddress, type Address } from "viem";
import { DEVNET_CHAIN_ID, Roles, nodeRegistryAbi, toGradnetError } from "../../sdk";
import type { ChainConnection } from "../chain";
import type { Context } from "../context";
import { UsageError } from "../errors";
import { fields, formatTime } from "../output";
import { formatAmount, parseAmount, parseRoles, roleNames } from "../values";

export interface NodeStatus {
  address: Address;
  registered: boolean;
  stake: string;
  roles: string[];
  /** Per held role: whether the node may act in it now (stake ≥ minimum, not jailed). */
  active: Record<string, boolean>;
  jailedUntil: string;
  unbonding: string;
  unbondingReleaseAt: string;
  registeredAt: string;
}

async function readStatus(conn: ChainConnection, address: Address): Promise<NodeStatus> {
  const registry = { address: conn.addresses.nodeRegistry, abi: nodeRegistryAbi } as const;
  const info = await conn.publicClient.readContract({
    ...registry,
    functionName: "nodeInfo",
    args: [address],
  });
  const roles = roleNames(info.roles);
  const active: Record<string, boolean> = {};
  for (const [name, bit] of [
    ["inference", Roles.INFERENCE],
    ["verifier", Roles.VERIFIER],
    ["data", Roles.DATA],
  ] as const) {
    if ((info.roles & bit) === 0) continue;
    active[name] = await conn.publicClient.readContract({
      ...registry,
      functionName: "isActive",
      args: [address, bit],
    });
  }
  return {
    address,
    registered: info.registeredAt !== 0n,
    stake: info.stake.toString(),
    roles,
    active,
    jailedUntil: info.jailedUntil.toString(),
    unbonding: info.unbonding.toString(),
    unbondingReleaseAt: info.unbondingReleaseAt.toString(),
    registeredAt: info.registeredAt.toString(),
  };
}

/** Pure: a node's status as text. */
export function renderStatus(s: NodeStatus, now: number): string {
  if (!s.registered) return `node ${s.address} is not registered`;
  const jailed = Number(s.jailedUntil);
  return [
    `node ${s.address}`,
    fields(
      [
        ["stake", formatAmount(BigInt(s.stake))],
        ["roles", s.roles.length === 0 ? "none" : s.roles.join(", ")],
        ...s.roles.map((r) => [`  ${r}`, s.active[r] ? "active" : "inactive"] as const),
        ["jailed", jailed > now ? `until ${formatTime(jailed)}` : "no"],
        [
          "unbonding",
          BigInt(s.unbonding) === 0n
            ? "none"
            : `${formatAmount(BigInt(s.unbonding))}, released at ${formatTime(BigInt(s.unbondingReleaseAt))}`,
        ],
        ["registered", formatTime(BigInt(s.registeredAt))],
      ],
      "  ",
    ),
  ].join("\n");
}

async function printStatus(ctx: Context, conn: ChainConnection, address: Address, extra: object = {}) {
  const status = await readStatus(conn, address);
  const block = await conn.publicClient.getBlock();
  ctx.printJson({ ...status, ...extra });
  ctx.print(renderStatus(status, Number(block.timestamp)));
}

export async function register(ctx: Context): Promise<void> {
  const roles = parseRoles(ctx.flag("roles")!, ctx.command);
  const conn = await ctx.chain();
  const registry = { address: conn.addresses.nodeRegistry, abi: nodeRegistryAbi } as const;
  const stakeText = ctx.flag("stake");
  let stake: bigint;
  if (stakeText !== undefined) {
    stake = parseAmount(stakeText, "stake", ctx.command);
  } else {
    // The least stake that covers every role asked for.
    stake = 0n;
    for (const bit of [Roles.INFERENCE, Roles.VERIFIER, Roles.DATA]) {
      if ((roles & bit) === 0) continue;
      const min = await conn.publicClient.readContract({
        ...registry,
        functionName: "minStake",
        args: [bit],
      });
      if (min > stake) stake = min;
    }
  }
  if (stake === 0n) throw new UsageError("--stake must be more than 0", ctx.command);
  const signer = await ctx.signer();
  let txHash;
  try {
    const { request } = await conn.publicClient.simulateContract({
      ...registry,
      functionName: "register",
      args: [roles],
      value: stake,
      account: signer.account,
    });
    txHash = await signer.walletClient.writeContract(request);
  } catch (err) {
    throw toGradnetError(err);
  }
  const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash });
  if (receipt.status !== "success") throw new Error(`register transaction ${txHash} reverted`);
  ctx.print(
    `registered ${signer.account.address} as ${roleNames(roles).join(", ")} with ${formatAmount(stake)} staked (tx ${txHash})`,
  );
  await printStatus(ctx, conn, signer.account.address, { txHash });
}

export async function status(ctx: Context): Promise<void> {
  const given = ctx.args.positionals[0];
  if (given !== undefined && !isAddress(given))
    throw new UsageError(`"${given}" is not an address (0x + 40 hex digits)`, ctx.command);
  const conn = await ctx.chain();
  if (given === undefined && ctx.settings.key === undefined && conn.chainId !== DEVNET_CHAIN_ID)
    throw new UsageError(
      "give the node's address, or --key (GRADNET_PRIVATE_KEY) to show the signing account",
      ctx.command,
    );
  const address = given !== undefined ? getAddress(given) : (await ctx.signer()).account.address;
  await printStatus(ctx, conn, address);
}
