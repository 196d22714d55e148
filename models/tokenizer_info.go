package models

import (
	"encoding/json"
	"fmt"
	"os"
)

// TokenizerInfo is what the exporter needs from a Hugging Face
// tokenizer.json: the vocabulary size and the ids of named tokens.
type TokenizerInfo struct {
	VocabSize int            // 1 + the largest id in the model vocab and added tokens
	Tokens    map[string]int // added tokens by content
}

// ReadTokenizerInfo reads the vocabulary size and added tokens of a
// tokenizer.json (BPE / WordPiece / WordLevel map vocab or Unigram list).
func ReadTokenizerInfo(path string) (*TokenizerInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	var raw struct {
		Added []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
		Model struct {
			Vocab json.RawMessage `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadTokenizer, path, err)
	}
	info := &TokenizerInfo{Tokens: map[string]int{}}
	var m map[string]int
	var list [][]any
	switch {
	case json.Unmarshal(raw.Model.Vocab, &m) == nil:
		for _, id := range m {
			info.VocabSize = max(info.VocabSize, id+1)
		}
	case json.Unmarshal(raw.Model.Vocab, &list) == nil:
		info.VocabSize = len(list)
	default:
		return nil, fmt.Errorf("%w: %s: model.vocab is neither a map nor a list", ErrBadTokenizer, path)
	}
	for _, a := range raw.Added {
		info.Tokens[a.Content] = a.ID
		info.VocabSize = max(info.VocabSize, a.ID+1)
	}
	if info.VocabSize == 0 {
		return nil, fmt.Errorf("%w: %s: empty vocabulary", ErrBadTokenizer, path)
	}
	return info, nil
}

// SpecialTokens returns the Qwen2-VL special token ids; the tokenizer must
// define <|endoftext|>, <|im_end|>, <|image_pad|>, <|vision_start|> and
// <|vision_end|> as added tokens.
func (t *TokenizerInfo) SpecialTokens() (SpecialTokens, error) {
	need := []string{"<|endoftext|>", "<|im_end|>", "<|image_pad|>", "<|vision_start|>", "<|vision_end|>"}
	for _, n := range need {
		if _, ok := t.Tokens[n]; !ok {
			return SpecialTokens{}, fmt.Errorf("%w: no added token %q", ErrBadTokenizer, n)
		}
	}
	return SpecialTokens{
		BOS: -1, EOS: []int{t.Tokens["<|im_end|>"], t.Tokens["<|endoftext|>"]}, PAD: t.Tokens["<|endoftext|>"],
		ImagePad: t.Tokens["<|image_pad|>"], VisionStart: t.Tokens["<|vision_start|>"], VisionEnd: t.Tokens["<|vision_end|>"],
	}, nil
}
