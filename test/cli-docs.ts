/**
 * The example command lines of docs/cli.md, for the tests that keep the page true: every line of
 * every ```sh block, with the exit code its `# exit N` comment promises (0 otherwise), and whether
 * the block is marked `<!-- cli-test: skip (...) -->` (long-running commands).
 */
import fs from "node:fs";
import path from "node:path";

export const CLI_DOC = path.resolve(__dirname, "..", "docs", "cli.md");

export interface DocExample {
  /** The command line as the page shows it, without its `# exit N` comment. */
  line: string;
  expectedExit: number;
  skip: boolean;
  /** 1-based line number in the page. */
  lineNumber: number;
}

export function docExamples(markdown = fs.readFileSync(CLI_DOC, "utf8")): DocExample[] {
  const examples: DocExample[] = [];
  let inSh = false;
  let inOther = false;
  let skipNext = false;
  let skip = false;
  markdown.split("\n").forEach((raw, i) => {
    const text = raw.trim();
    if (!inSh && !inOther) {
      if (/^<!--\s*cli-test:\s*skip\b/.test(text)) skipNext = true;
      else if (text === "```sh") {
        inSh = true;
        skip = skipNext;
        skipNext = false;
      } else if (text.startsWith("```")) inOther = true;
      return;
    }
    if (text.startsWith("```")) {
      inSh = false;
      inOther = false;
      return;
    }
    if (!inSh || text === "" || text.startsWith("#")) return;
    const m = /\s+#\s*exit\s+(\d+)\s*$/.exec(text);
    examples.push({
      line: m === null ? text : text.slice(0, m.index),
      expectedExit: m === null ? 0 : Number(m[1]),
      skip,
      lineNumber: i + 1,
    });
  });
  return examples;
}

/** The leading words of a `gradnet …` line, up to its first flag or quoted argument. */
export function commandWords(line: string): string[] | undefined {
  const words = line.split(/\s+/);
  if (words[0] !== "gradnet") return undefined;
  const out: string[] = [];
  for (const w of words.slice(1)) {
    if (w.startsWith("-") || /['"@]/.test(w)) break;
    out.push(w);
  }
  return out;
}
