// Hugging Face's own tokenizers library (npm `tokenizers`, its Rust core) on a tokenizer.json: the reference the
// tokenizer tests compare moelab's ids with.
//
//   node tests/clients/tokenize.js TOKENIZER_JSON TEXT_FILE OUT_JSON
//
// OUT_JSON gets {"ids": [...], "decoded": "..."}: the ids of the whole text, without the special tokens a
// post-processor adds, and the text those ids decode to with special tokens skipped.
"use strict";
const fs = require("fs");
const { Tokenizer } = require("tokenizers");

async function main() {
  const [tokenizerPath, textPath, outPath] = process.argv.slice(2);
  if (!outPath) throw new Error("usage: tokenize.js TOKENIZER_JSON TEXT_FILE OUT_JSON");
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  const encoding = await tokenizer.encode(fs.readFileSync(textPath, "utf8"), null, { addSpecialTokens: false });
  const ids = Array.from(encoding.getIds());
  fs.writeFileSync(outPath, JSON.stringify({ ids, decoded: await tokenizer.decode(ids, true) }));
}

main().catch((e) => {
  console.error(`tokenize.js: ${e.message}`);
  process.exit(1);
});
