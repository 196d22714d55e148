package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// trainedByteLevel and trainedPreTokenizer are the fixed components of a
// trained tokenizer: those of Qwen2/2.5/3, so Hugging Face tools treat it
// the same way.
func trainedByteLevel() map[string]any {
	return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
}

func trainedPreTokenizer() map[string]any {
	return map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": QwenPattern}, "behavior": "Isolated", "invert": false},
		trainedByteLevel(),
	}}
}

// tokenizerJSON writes the trained model as a standard tokenizer.json with
// the vocab in id order and merges as [left, right] pairs.
func (bt *bpeTrainer) tokenizerJSON(added []AddedToken) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	put := func(v any) error { return enc.Encode(v) } // Encode appends '\n'
	buf.WriteString("{\n\"version\": \"1.0\",\n\"truncation\": null,\n\"padding\": null,\n\"added_tokens\": [\n")
	for i, a := range added {
		a.ID = len(bt.tokens) + i
		if i > 0 {
			buf.WriteString(",")
		}
		if err := put(a); err != nil {
			return nil, fmt.Errorf("tokenizer: write added token: %w", err)
		}
	}
	sections := []struct {
		name string
		v    any
	}{{"normalizer", map[string]any{"type": "NFC"}}, {"pre_tokenizer", trainedPreTokenizer()},
		{"post_processor", trainedByteLevel()}, {"decoder", trainedByteLevel()}}
	buf.WriteString("]")
	for _, s := range sections {
		fmt.Fprintf(&buf, ",\n%q: ", s.name)
		if err := put(s.v); err != nil {
			return nil, fmt.Errorf("tokenizer: write %s: %w", s.name, err)
		}
	}
	buf.WriteString(",\n\"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, " +
		"\"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": false, " +
		"\"byte_fallback\": false, \"ignore_merges\": false,\n\"vocab\": {\n")
	for id, tok := range bt.tokens {
		if id > 0 {
			buf.WriteString(",")
		}
		if err := put(tok); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1)
		fmt.Fprintf(&buf, ": %d\n", id)
	}
	buf.WriteString("},\n\"merges\": [\n")
	for i, m := range bt.merges {
		if i > 0 {
			buf.WriteString(",")
		}
		if err := put([2]string{bt.tokens[m[0]], bt.tokens[m[1]]}); err != nil {
			return nil, err
		}
	}
	buf.WriteString("]\n}\n}\n")
	if !json.Valid(buf.Bytes()) {
		return nil, fmt.Errorf("%w: generated tokenizer.json is not valid JSON", ErrTrain)
	}
	return buf.Bytes(), nil
}
