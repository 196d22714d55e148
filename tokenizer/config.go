package tokenizer

import (
	"encoding/json"
	"fmt"
)

// fileJSON is the part of a Hugging Face tokenizer.json this package reads.
// Components stay raw until their "type" is known.
type fileJSON struct {
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

// AddedToken is one entry of tokenizer.json's "added_tokens": a string that
// is matched in the input before any other processing and maps to one id.
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"` // match only as a whole word
	LStrip     bool   `json:"lstrip"`      // swallow whitespace on the left
	RStrip     bool   `json:"rstrip"`      // swallow whitespace on the right
	Normalized bool   `json:"normalized"`  // match in normalised text, not raw text
	Special    bool   `json:"special"`     // dropped by Decode(ids, true)
}

// typed is the common head of every component: its "type" field.
type typed struct {
	Type string `json:"type"`
}

// bpeJSON is a "BPE" model. Merges come either as "a b" strings (older
// files) or as ["a","b"] pairs (tokenizers ≥ 0.20).
type bpeJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

// mergePairs decodes the merges in either format.
func (m *bpeJSON) mergePairs() ([][2]string, error) {
	if len(m.Merges) == 0 || isNull(m.Merges) {
		return nil, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(m.Merges, &pairs); err == nil {
		out := make([][2]string, len(pairs))
		for i, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("%w: merge %d has %d parts", ErrFormat, i, len(p))
			}
			out[i] = [2]string{p[0], p[1]}
		}
		return out, nil
	}
	var lines []string
	if err := json.Unmarshal(m.Merges, &lines); err != nil {
		return nil, fmt.Errorf("%w: merges are neither [\"a b\"] nor [[\"a\",\"b\"]]: %w", ErrFormat, err)
	}
	out := make([][2]string, len(lines))
	for i, s := range lines {
		a, b, ok := cutSpace(s)
		if !ok {
			return nil, fmt.Errorf("%w: merge %d %q is not two tokens", ErrFormat, i, s)
		}
		out[i] = [2]string{a, b}
	}
	return out, nil
}

// cutSpace splits "a b" at its only space.
func cutSpace(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			a, b := s[:i], s[i+1:]
			if a == "" || b == "" {
				return "", "", false
			}
			for j := 0; j < len(b); j++ {
				if b[j] == ' ' {
					return "", "", false
				}
			}
			return a, b, true
		}
	}
	return "", "", false
}

// splitJSON is a "Split" pre-tokenizer.
type splitJSON struct {
	Pattern struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior string `json:"behavior"`
	Invert   bool   `json:"invert"`
}

// byteLevelJSON is a "ByteLevel" pre-tokenizer, decoder or post-processor.
type byteLevelJSON struct {
	AddPrefixSpace bool  `json:"add_prefix_space"`
	TrimOffsets    bool  `json:"trim_offsets"`
	UseRegex       *bool `json:"use_regex"` // absent means true
}

// sequenceJSON is a "Sequence" normalizer or pre-tokenizer.
type sequenceJSON struct {
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
}

// isNull reports whether a raw component is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// componentType reads the "type" field of a raw component.
func componentType(component string, raw json.RawMessage) (string, error) {
	var t typed
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", &ComponentError{Component: component, Err: fmt.Errorf("%w: %w", ErrFormat, err)}
	}
	return t.Type, nil
}
