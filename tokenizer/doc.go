// Package tokenizer loads Hugging Face tokenizer.json files and encodes and
// decodes text exactly as the Hugging Face tokenizers (Rust) and
// transformers.js do, renders a model folder's own chat template and the
// Qwen2-VL chat prompt for visual question answering, and trains small
// byte-level BPE tokenizers.
//
// # Loading and encoding
//
// Load reads a tokenizer.json of the byte-level BPE family (GPT-2,
// Qwen2/2.5/3) or of the WordPiece family (BERT). Encode recognises added
// and special tokens written in the text ("<|im_start|>", "<|image_pad|>",
// "<think>" …) and adds none of its own (no BOS/EOS); Decode reverses it,
// optionally without special tokens:
//
//	tok, err := tokenizer.Load("tokenizer.json")
//	if err != nil { … }
//	ids, err := tok.Encode("<|vision_start|><|image_pad|><|vision_end|>What modality is this?")
//	text, err := tok.Decode(ids, true) // "What modality is this?"
//
// A Tokenizer is safe for concurrent use; it caches the ids of the most
// recent 10,000 distinct pre-tokens (DefaultCacheSize), so serving-time
// encoding is mostly map look-ups.
//
// # What comes from where
//
// github.com/sugarme/tokenizer v0.3.0 cannot load the Qwen tokenizer.json
// (its pre-tokenizer pattern has a look-ahead, `\s+(?!\S)`, that Go's RE2
// rejects) and drops text next to special tokens ("a<|image_pad|>b" →
// "a", "b" lost), so this package routes around it for byte-level BPE:
//
//   - added tokens are matched here, leftmost and longest first, before any
//     normalisation, as Hugging Face does;
//   - NFC/NFD/NFKC/NFKD normalisation uses golang.org/x/text/unicode/norm;
//   - the Qwen pattern (QwenPattern) runs through a hand-written matcher
//     that reports byte offsets and allocates nothing per match; any other
//     Split pattern, look-arounds included, runs through
//     github.com/dlclark/regexp2, whose rune offsets are mapped to byte
//     offsets. The test suite checks the two agree on the whole parity
//     corpus;
//   - the BPE model merges with a heap (O(n log n) on long words) and keeps
//     a bounded word cache;
//   - byte fallback ("<0xAB>" tokens) and unk handling follow BPE::merge_word.
//
// WordPiece tokenizers run through sugarme's normalizer, pre-tokenizer,
// model and decoder, which are right; only the added-token splitting is
// done here.
//
// # Chat prompts
//
// VQAPrompt renders the Qwen2-VL chat format with the image placeholder
// expanded to ImageTokens <|image_pad|> tokens; EncodePrompt also returns the
// token span of the answer, so training can mask its loss to it:
//
//	e, err := tok.EncodePrompt(tokenizer.VQAPrompt{
//		Question:    "Which knee osteoarthritis grade is shown?",
//		Options:     []string{"0", "1", "2", "3"},
//		ImageTokens: gridT * gridH * gridW / (2 * 2),
//		Answer:      "<think>…</think><answer>C</answer>",
//	})
//	// loss on e.IDs[e.AnswerStart:e.AnswerEnd]
//
// # Chat templates
//
// ChatTemplate renders the Jinja chat_template of a Hugging Face
// tokenizer_config.json (a string, or a list of {name, template} whose
// "default" is used) exactly as transformers.js's apply_chat_template does.
// Messages are ChatMessage values, whose JSON form is Hugging Face's
// ({"role", "content"} with content a string or a list of {"type": "text"
// | "image", "text"}). The template sees messages, add_generation_prompt,
// tools and documents (none) and the config's bos_token, eos_token …
// (pad_token, unk_token, sep_token, cls_token, mask_token) when set.
// Qwen2-VL templates write one <|image_pad|> per image; ExpandImagePads
// widens each to the image's token count as Qwen2VLProcessor does, and
// EncodeChat does all of it and encodes, rejecting message text that
// contains a special token:
//
//	ct, err := tokenizer.LoadChatTemplate("model/tokenizer_config.json")
//	msgs := []tokenizer.ChatMessage{
//		{Role: "system", Text: "You are a radiologist."},
//		{Role: "user", Parts: []tokenizer.ChatPart{
//			{Type: tokenizer.ChatImage},
//			{Type: tokenizer.ChatText, Text: "Which grade is shown?"},
//		}},
//	}
//	text, ids, err := tok.EncodeChat(ct, msgs, true, []int{gridT * gridH * gridW / (2 * 2)})
//
// Templates run on github.com/ardanlabs/jinja v1.8.0, a pure-Go Jinja
// engine written for Hugging Face chat templates (trim_blocks and
// lstrip_blocks as Hugging Face sets them). A construct it lacks
// ({% include %}, {% with %}, an unknown filter or method) is an error
// wrapping ErrUnsupported that names the config file, never a guess.
// Known divergences from @huggingface/jinja, none of which the Qwen
// templates use: a value printed with {{ … }} renders Python-style for
// booleans ("True", not "true"), lists and dicts (['a', None], not
// ["a", null]), and whole floats print without ".0" ("1", not "1.0");
// Python's string formatting ('%s' % x) is not supported and evaluates to
// 0 instead of failing. tojson, joins and string methods agree.
//
// # Training
//
// TrainBPE learns a byte-level BPE tokenizer (NFC, QwenPattern, ByteLevel)
// with the Qwen2-VL special tokens as added tokens (QwenVLSpecialTokens);
// the result is deterministic given the corpus and is saved as a standard
// tokenizer.json that Hugging Face tools load:
//
//	texts, err := tokenizer.ReadCorpus(ctx, "../shared/data/omnimedvqa-text")
//	tok, err := tokenizer.TrainBPE(ctx, texts, tokenizer.TrainOptions{VocabSize: 3000})
//	err = tok.Save("tokenizer.json")
//
// # Parity
//
// The tests encode the corpus in testdata/parity_corpus.json (3,482
// strings: OmniMedVQA questions and options, numbers, code, emoji, CJK,
// whitespace runs, every special token, chat prompts) with this package and
// with @huggingface/transformers under Node (scripts/tokenizer-parity,
// installed by `make fixtures`), for the real Qwen3 tokenizer and for a
// trained one, and require identical ids and decodes. They also render the
// conversations in testdata/chat_corpus.json (system or none, one or two
// images, text before images, multiple turns, with and without the
// generation prompt) with the Qwen2-VL, Qwen2.5-VL and Qwen3 templates, a
// named-list config and an engine edge-case template, and require the text
// and ids of transformers.js's apply_chat_template
// (scripts/tokenizer-parity/chat.cjs).
package tokenizer
