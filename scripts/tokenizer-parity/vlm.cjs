#!/usr/bin/env node
// vlm.cjs runs a medgr2 bundle with Hugging Face transformers.js as
// Qwen2VLForConditionalGeneration: the reference the Go models package is
// checked against (a bundle is a Hugging Face folder transformers.js loads
// with no added file).
//
// Usage: node vlm.cjs BUNDLE_DIR [DTYPE] < requests.json > out.json
//   DTYPE: the transformers.js dtype option (fp32, fp16, q4f16, …; default
//          fp32), which picks onnx/<graph>_<suffix>.onnx
//   stdin: a JSON array of requests, each
//          {"system": "...", "question": "...",      // the chat, rendered by the
//           "image_tokens": N,                       // folder's chat_template
//           "pixel_values": [...], "patches": P,     // [P, 1176] float32, row-major
//           "image_grid_thw": [t, h, w],
//           "assistant_suffix": "...",               // optional text after the generation
//                                                    // prompt, encoded on its own (medgr2's
//                                                    // fast VQA path scores letters after it)
//           "image_path": "...",                     // instead of the three above:
//                                                    // transformers.js preprocesses the
//                                                    // image itself (sharp) and sets the pads
//           "max_new_tokens": 16}
//   stdout: a JSON array, one result per request:
//           {"prompt_ids": [...],        // apply_chat_template, pads expanded
//            "first_logits": [...],      // logits after the last prompt token
//            "tokens": [...],            // greedy new tokens (generate)
//            "image_tokens": N}          // pads used (its own count with image_path)
// Modules are looked up in $MEDGR2_PARITY_MODULES, else
// third_party/tokenizer-parity/node_modules (installed by scripts/fetch-fixtures.sh).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

async function main() {
  const [dir, dtype = 'fp32'] = process.argv.slice(2);
  if (!dir) {
    process.stderr.write('usage: vlm.cjs BUNDLE_DIR < request.json\n');
    process.exit(2);
  }
  const modules = process.env.MEDGR2_PARITY_MODULES ||
    path.join(__dirname, '..', '..', 'third_party', 'tokenizer-parity', 'node_modules');
  const req = createRequire(path.join(modules, 'noop.js'));
  const { env, AutoTokenizer, AutoProcessor, RawImage, Qwen2VLForConditionalGeneration, Tensor } = req('@huggingface/transformers');
  const abs = path.resolve(dir);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(abs) + path.sep;
  const id = path.basename(abs);

  const requests = JSON.parse(fs.readFileSync(0, 'utf8'));
  const tokenizer = await AutoTokenizer.from_pretrained(id);
  const model = await Qwen2VLForConditionalGeneration.from_pretrained(id, { dtype, device: 'cpu' });
  const processor = requests.some((r) => r.image_path) ? await AutoProcessor.from_pretrained(id) : null;
  const results = [];
  for (const r of requests) {
    let own = null;
    if (r.image_path) {
      own = await processor.image_processor(await RawImage.read(r.image_path));
      const merge = processor.image_processor.config.merge_size ?? 2;
      r.image_tokens = Number(own.image_grid_thw.data.reduce((a, b) => a * b, 1n)) / (merge * merge);
    }
    const content = [];
    if (r.image_tokens > 0) content.push({ type: 'image' });
    content.push({ type: 'text', text: r.question });
    const messages = [{ role: 'system', content: r.system }, { role: 'user', content }];
    let text = tokenizer.apply_chat_template(messages, { add_generation_prompt: true, tokenize: false });
    text = text.replace('<|image_pad|>', '<|image_pad|>'.repeat(r.image_tokens));
    let ids = tokenizer.encode(text, { add_special_tokens: false });
    if (r.assistant_suffix) ids = ids.concat(tokenizer.encode(r.assistant_suffix, { add_special_tokens: false }));
    const input_ids = new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
    const attention_mask = new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
    const inputs = { input_ids, attention_mask };
    if (own) {
      inputs.pixel_values = own.pixel_values;
      inputs.image_grid_thw = own.image_grid_thw;
    } else if (r.image_tokens > 0) {
      inputs.pixel_values = new Tensor('float32', Float32Array.from(r.pixel_values), [r.patches, r.pixel_values.length / r.patches]);
      inputs.image_grid_thw = new Tensor('int64', BigInt64Array.from(r.image_grid_thw.map(BigInt)), [1, 3]);
    }
    const out = await model(inputs);
    const logits = out.logits.type === 'float32' ? out.logits : out.logits.to('float32'); // fp16 variants
    const [, T, V] = logits.dims;
    const first = Array.from(logits.data.slice((T - 1) * V, T * V));
    const gen = await model.generate({ ...inputs, max_new_tokens: r.max_new_tokens, do_sample: false });
    const all = Array.from(gen.data, Number);
    results.push({ prompt_ids: ids, first_logits: first, tokens: all.slice(ids.length), image_tokens: r.image_tokens });
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
