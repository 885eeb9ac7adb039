/**
 * The CLI's adapter to the relayer's HTTP API: JSON reads, and model uploads that report their
 * progress. A relayer that does not answer is an UnreachableError naming its URL.
 */
import http from "node:http";
import https from "node:https";
import type { Hex } from "viem";
import { RelayerError, UnreachableError } from "./errors";

export const RELAYER_HINT =
  "start a devnet with `gradnet devnet` (or a relayer with `npm run relayer`), or pass --relayer <url>";

export interface StoredModel {
  sha256: Hex;
  size: number;
  uri: string;
}

function errorFromBody(status: number, text: string): RelayerError {
  try {
    const body = JSON.parse(text) as { error?: string; message?: string };
    return new RelayerError(status, body.error ?? "HTTP_ERROR", body.message ?? text);
  } catch {
    return new RelayerError(status, "HTTP_ERROR", text.slice(0, 300));
  }
}

/** GET a JSON document from the relayer. */
export async function relayerGet<T>(base: string, route: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${base}${route}`, { signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new UnreachableError("the relayer", base, RELAYER_HINT, { cause: err });
  }
  const text = await res.text();
  if (!res.ok) throw errorFromBody(res.status, text);
  return JSON.parse(text) as T;
}

const CHUNK = 64 * 1024;

/**
 * POST the model's bytes to /models with a Content-Length, writing them in chunks and calling
 * `onProgress(sent, total)` as the socket takes them.
 */
export function uploadModel(
  base: string,
  bytes: Uint8Array,
  onProgress: (sent: number, total: number) => void,
): Promise<StoredModel & { created: boolean }> {
  const url = new URL(`${base.replace(/\/+$/, "")}/models`);
  const lib = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method: "POST",
        headers: { "content-type": "application/octet-stream", "content-length": bytes.length },
        timeout: 120_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return reject(errorFromBody(status, text));
          try {
            const body = JSON.parse(text) as StoredModel;
            resolve({ ...body, created: status === 201 });
          } catch (err) {
            reject(new RelayerError(status, "BAD_RESPONSE", `not JSON: ${(err as Error).message}`));
          }
        });
      },
    );
    let settled = false;
    req.on("error", (err) => {
      if (settled) return;
      settled = true;
      // The relayer may answer (413, 400) and close before the whole body is sent; that answer wins.
      reject(new UnreachableError("the relayer", base, RELAYER_HINT, { cause: err }));
    });
    req.on("timeout", () => req.destroy(new Error("the upload timed out")));
    req.on("response", () => (settled = true));
    let sent = 0;
    onProgress(0, bytes.length);
    const writeMore = () => {
      while (sent < bytes.length) {
        const end = Math.min(sent + CHUNK, bytes.length);
        const ok = req.write(bytes.subarray(sent, end));
        sent = end;
        onProgress(sent, bytes.length);
        if (!ok) return void req.once("drain", writeMore);
      }
      req.end();
    };
    writeMore();
  });
}
