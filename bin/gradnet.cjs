#!/usr/bin/env node
// The `gradnet` command: runs the TypeScript CLI (cli/main.ts) through the repository's own tsx,
// so it needs no build step. `npx gradnet --help` in the repository, or `npm run gradnet -- --help`.
"use strict";
const path = require("node:path");
const { pathToFileURL } = require("node:url");

// Importing tsx sets the hooks `node --import tsx` sets: require() and import() of .ts files.
import(pathToFileURL(require.resolve("tsx")).href).then(() =>
  require(path.join(__dirname, "..", "cli", "main.ts")).runCli(process.argv.slice(2)),
);
