package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// DefaultCacheSize is the number of distinct pre-tokens whose ids a
// Tokenizer caches (Hugging Face's BPE uses the same bound).
const DefaultCacheSize = 10000

// Tokenizer encodes text to token ids and decodes ids back, exactly as the
// Hugging Face tokenizer.json it was loaded from. It is safe for concurrent
// use by multiple goroutines.
type Tokenizer struct {
	raw         []byte         // the tokenizer.json, written back by Save
	added       []AddedToken   // added tokens, in file order
	special     map[int]bool   // ids of special added tokens
	addedID     map[int]bool   // ids of all added tokens
	matcher     *addedMatcher  // added tokens matched in raw text
	normMatcher *addedMatcher  // added tokens with normalized: true
	idToTok     map[int]string // model vocab and added tokens, by id
	tokToID     map[string]int // added tokens override the model vocab
	size        int            // 1 + the highest id

	pipe pipeline // the model-specific encode/decode path
}

// pipeline is the normalise → pre-tokenise → model path for plain text (no
// added tokens inside) and the decoder for a run of model tokens.
type pipeline interface {
	// normalize applies the normalizer (identity when the pipeline
	// normalises inside encodeNormalized).
	normalize(text string) string
	// encodeNormalized appends the ids of normalised plain text.
	encodeNormalized(dst []int, text string) ([]int, error)
	// decodeTokens joins a run of tokens into text.
	decodeTokens(tokens []string) (string, error)
	// decodesAdded reports whether added tokens go through decodeTokens
	// with the model tokens (WordPiece joins them all with spaces) rather
	// than being written verbatim between runs (byte-level).
	decodesAdded() bool
}

// Load reads a Hugging Face tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load %s: %w", path, err)
	}
	t, err := LoadBytes(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return t, nil
}

// LoadBytes parses the contents of a tokenizer.json. Supported: BPE models
// with ByteLevel pre-tokenizer and decoder (GPT-2, Qwen2/2.5/3 and their
// Split patterns, including look-arounds), and WordPiece models (BERT).
// Anything else is an error wrapping ErrUnsupported.
func LoadBytes(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if isNull(f.Model) {
		return nil, &ComponentError{Component: "model", Err: fmt.Errorf("%w: missing", ErrFormat)}
	}
	mtype, err := componentType("model", f.Model)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{raw: bytes.Clone(data), added: f.AddedTokens}
	var vocab map[string]int
	switch mtype {
	case "BPE", "":
		var p *bpePipeline
		p, vocab, err = newBPEPipeline(&f)
		t.pipe = p
	case "WordPiece":
		var p *wordPiecePipeline
		p, vocab, err = newWordPiecePipeline(data, &f)
		t.pipe = p
	default:
		err = &ComponentError{Component: "model", Type: mtype, Err: ErrUnsupported}
	}
	if err != nil {
		return nil, err
	}
	if err := t.indexVocab(vocab); err != nil {
		return nil, err
	}
	return t, nil
}

// indexVocab builds the id↔token maps and the added-token matchers.
func (t *Tokenizer) indexVocab(vocab map[string]int) error {
	t.idToTok = make(map[int]string, len(vocab)+len(t.added))
	t.tokToID = make(map[string]int, len(vocab)+len(t.added))
	t.special = make(map[int]bool)
	t.addedID = make(map[int]bool)
	for tok, id := range vocab {
		if id < 0 {
			return &ComponentError{Component: "model", Err: fmt.Errorf("%w: negative id %d for %q", ErrFormat, id, tok)}
		}
		t.idToTok[id] = tok
		t.tokToID[tok] = id
	}
	var raw, normed []AddedToken
	for _, a := range t.added {
		if a.ID < 0 || a.Content == "" {
			return &ComponentError{Component: "added_tokens", Err: fmt.Errorf("%w: token %q with id %d", ErrFormat, a.Content, a.ID)}
		}
		t.idToTok[a.ID] = a.Content
		t.tokToID[a.Content] = a.ID
		t.addedID[a.ID] = true
		if a.Special {
			t.special[a.ID] = true
		}
		if a.Normalized && !a.Special {
			normed = append(normed, a)
		} else {
			raw = append(raw, a)
		}
	}
	t.matcher = newAddedMatcher(raw)
	if len(normed) > 0 {
		t.normMatcher = newAddedMatcher(normed)
	}
	for id := range t.idToTok {
		if id+1 > t.size {
			t.size = id + 1
		}
	}
	return nil
}

// Encode returns the ids of text. Added and special tokens written in the
// text ("<|im_start|>", "<|image_pad|>", "<think>" …) become their single
// ids; no special tokens are added (no BOS/EOS, no post-processor).
func (t *Tokenizer) Encode(text string) ([]int, error) {
	return t.AppendEncode(make([]int, 0, len(text)/3+1), text)
}

// AppendEncode is Encode that appends to dst, to reuse a buffer.
func (t *Tokenizer) AppendEncode(dst []int, text string) ([]int, error) {
	var buf [16]segment
	for _, seg := range t.matcher.split(buf[:0], text) {
		if seg.id >= 0 {
			dst = append(dst, seg.id)
			continue
		}
		var err error
		if dst, err = t.encodePlain(dst, seg.text); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// encodePlain encodes text free of raw-matched added tokens: normalise,
// match the normalized added tokens, then run the model path.
func (t *Tokenizer) encodePlain(dst []int, text string) ([]int, error) {
	norm := t.pipe.normalize(text)
	if t.normMatcher == nil {
		return t.pipe.encodeNormalized(dst, norm)
	}
	var err error
	for _, seg := range t.normMatcher.split(nil, norm) {
		if seg.id >= 0 {
			dst = append(dst, seg.id)
		} else if dst, err = t.pipe.encodeNormalized(dst, seg.text); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// Decode returns the text of ids. With skipSpecial, tokens marked special
// in added_tokens are left out (non-special added tokens such as Qwen3's
// "<think>" stay). Byte sequences that are not valid UTF-8 (a multi-byte
// character cut between ids) decode to U+FFFD. An id outside the
// vocabulary is an error wrapping ErrUnknownID.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	var sb strings.Builder
	run := make([]string, 0, len(ids))
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		s, err := t.pipe.decodeTokens(run)
		sb.WriteString(s)
		run = run[:0]
		return err
	}
	for i, id := range ids {
		tok, ok := t.idToTok[id]
		if !ok {
			return "", fmt.Errorf("%w: id %d at position %d (vocab size %d)", ErrUnknownID, id, i, t.size)
		}
		if t.addedID[id] && !t.pipe.decodesAdded() {
			if skipSpecial && t.special[id] {
				continue
			}
			if err := flush(); err != nil {
				return "", err
			}
			sb.WriteString(tok)
			continue
		}
		if skipSpecial && t.special[id] {
			continue
		}
		run = append(run, tok)
	}
	if err := flush(); err != nil {
		return "", err
	}
	return sb.String(), nil
}

// TokenID returns the id of a token string (a vocabulary entry in the
// model's own alphabet, e.g. "Ġthe" for byte-level models, or an added
// token such as "<|image_pad|>").
func (t *Tokenizer) TokenID(tok string) (int, bool) {
	id, ok := t.tokToID[tok]
	return id, ok
}

// Token returns the token string of an id.
func (t *Tokenizer) Token(id int) (string, bool) {
	tok, ok := t.idToTok[id]
	return tok, ok
}

// VocabSize returns 1 + the highest id in the model vocabulary and the added
// tokens: the row count an embedding matrix needs.
func (t *Tokenizer) VocabSize() int { return t.size }

// AddedTokens returns a copy of the added tokens, sorted by id.
func (t *Tokenizer) AddedTokens() []AddedToken {
	out := append([]AddedToken(nil), t.added...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// JSON returns the tokenizer.json this tokenizer was loaded from or trained
// into. The caller must not modify it.
func (t *Tokenizer) JSON() []byte { return t.raw }

// Save writes the tokenizer as a Hugging Face tokenizer.json: the bytes it
// was loaded from, or the trained model (see TrainBPE). File mode 0644.
func (t *Tokenizer) Save(path string) error {
	if err := os.WriteFile(path, t.raw, 0o644); err != nil {
		return fmt.Errorf("tokenizer: save %s: %w", path, err)
	}
	return nil
}
