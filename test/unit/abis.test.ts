import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { ABIS_FILE, renderAbis } from "../../scripts/gen-abis";

test("sdk/abis.ts matches the compiled contracts (run `npm run abis` when this fails)", () => {
  assert.equal(fs.readFileSync(ABIS_FILE, "utf8"), renderAbis());
});
