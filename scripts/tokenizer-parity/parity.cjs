#!/usr/bin/env node
// parity.cjs encodes and decodes texts with Hugging Face transformers.js, the
// reference the Go tokenizer package is checked against.
//
// Usage: node parity.cjs TOKENIZER_JSON [TOKENIZER_CONFIG_JSON|-] < texts.json > out.json
//   stdin:  a JSON array of strings
//   stdout: {"ids": [[...]...], "decoded": [...], "decoded_skip": [...]}
//           ids: encode(text, {add_special_tokens: false});
//           decoded / decoded_skip: decode(ids) without / with skip_special_tokens.
// Modules are looked up in $MEDGR2_PARITY_MODULES, else
// third_party/tokenizer-parity/node_modules (installed by scripts/fetch-fixtures.sh).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

function main() {
  const [tokPath, cfgPath] = process.argv.slice(2);
  if (!tokPath) {
    process.stderr.write('usage: parity.cjs TOKENIZER_JSON [TOKENIZER_CONFIG_JSON|-]\n');
    process.exit(2);
  }
  const modules = process.env.MEDGR2_PARITY_MODULES ||
    path.join(__dirname, '..', '..', 'third_party', 'tokenizer-parity', 'node_modules');
  const req = createRequire(path.join(modules, 'noop.js'));
  const { PreTrainedTokenizer } = req('@huggingface/transformers');
  const tokenizerJSON = JSON.parse(fs.readFileSync(tokPath, 'utf8'));
  const config = cfgPath && cfgPath !== '-' ?
    JSON.parse(fs.readFileSync(cfgPath, 'utf8')) : { clean_up_tokenization_spaces: false };
  const tok = new PreTrainedTokenizer(tokenizerJSON, config);
  const texts = JSON.parse(fs.readFileSync(0, 'utf8'));
  const out = { ids: [], decoded: [], decoded_skip: [] };
  for (const t of texts) {
    const ids = tok.encode(t, { add_special_tokens: false });
    out.ids.push(ids);
    out.decoded.push(tok.decode(ids));
    out.decoded_skip.push(tok.decode(ids, { skip_special_tokens: true }));
  }
  process.stdout.write(JSON.stringify(out));
}

main();
