/** Fetch bytes by URI (http, https or file) with a size limit; errors say whether to retry. */
import fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { GradnetError } from "../sdk";

/** A fetch that failed. `permanent` ones (404, too large, bad URI) are not worth retrying. */
export class FetchError extends GradnetError {
  constructor(
    readonly uri: string,
    reason: string,
    readonly permanent: boolean,
    options?: { cause?: unknown },
  ) {
    super("FETCH", `fetching ${uri}: ${reason}`, options);
  }
}

export async function fetchBytes(uri: string, maxBytes: number, timeoutMs = 30_000): Promise<Uint8Array> {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (cause) {
    throw new FetchError(uri, "not a URL", true, { cause });
  }
  if (url.protocol === "file:") {
    try {
      const stat = await fs.stat(fileURLToPath(url));
      if (stat.size > maxBytes)
        throw new FetchError(uri, `${stat.size} bytes, above the ${maxBytes} byte limit`, true);
      return new Uint8Array(await fs.readFile(fileURLToPath(url)));
    } catch (cause) {
      if (cause instanceof FetchError) throw cause;
      throw new FetchError(uri, (cause as Error).message, true, { cause });
    }
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new FetchError(uri, `unsupported scheme ${url.protocol}`, true);
  }
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (cause) {
    throw new FetchError(uri, (cause as Error).message, false, { cause });
  }
  if (!res.ok)
    throw new FetchError(
      uri,
      `HTTP ${res.status}`,
      res.status >= 400 && res.status < 500 && res.status !== 429,
    );
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > maxBytes)
    throw new FetchError(uri, `${declared} bytes, above the ${maxBytes} byte limit`, true);
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.length > maxBytes)
    throw new FetchError(uri, `${body.length} bytes, above the ${maxBytes} byte limit`, true);
  return body;
}
