#!/usr/bin/env node
// chat.cjs renders conversations with Hugging Face transformers.js's
// apply_chat_template, the reference the Go tokenizer package's ChatTemplate
// is checked against.
//
// Usage: node chat.cjs TOKENIZER_JSON TOKENIZER_CONFIG_JSON < cases.json > out.json
//   stdin:  a JSON array of cases, each
//           {"messages": [...], "add_generation_prompt": bool}
//           messages as Hugging Face writes them: {"role", "content"} with
//           content a string or a list of {"type": "text"|"image", "text"}.
//   stdout: {"text": [...], "ids": [[...]...]}
//           text: apply_chat_template(messages, {tokenize: false, add_generation_prompt});
//           ids:  apply_chat_template(messages, {tokenize: true, return_tensor: false,
//                 return_dict: false, add_generation_prompt}).
// The chat template is the config's chat_template (a string, or a list of
// {name, template} of which "default" is used). Modules are looked up in
// $MEDGR2_PARITY_MODULES, else third_party/tokenizer-parity/node_modules
// (installed by scripts/fetch-fixtures.sh).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

function main() {
  const [tokPath, cfgPath] = process.argv.slice(2);
  if (!tokPath || !cfgPath) {
    process.stderr.write('usage: chat.cjs TOKENIZER_JSON TOKENIZER_CONFIG_JSON < cases.json\n');
    process.exit(2);
  }
  const modules = process.env.MEDGR2_PARITY_MODULES ||
    path.join(__dirname, '..', '..', 'third_party', 'tokenizer-parity', 'node_modules');
  const req = createRequire(path.join(modules, 'noop.js'));
  const { PreTrainedTokenizer } = req('@huggingface/transformers');
  const tokenizerJSON = JSON.parse(fs.readFileSync(tokPath, 'utf8'));
  const config = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  const tok = new PreTrainedTokenizer(tokenizerJSON, config);
  const cases = JSON.parse(fs.readFileSync(0, 'utf8'));
  const out = { text: [], ids: [] };
  for (const c of cases) {
    const add_generation_prompt = Boolean(c.add_generation_prompt);
    out.text.push(tok.apply_chat_template(c.messages, { tokenize: false, add_generation_prompt }));
    out.ids.push(tok.apply_chat_template(c.messages, {
      tokenize: true, return_tensor: false, return_dict: false, add_generation_prompt,
    }));
  }
  process.stdout.write(JSON.stringify(out));
}

main();
