package tokenizer

import (
	"bytes"
	"fmt"

	sugar "github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// wordPiecePipeline is the WordPiece path (BERT style). sugarme/tokenizer
// implements its normalizer, pre-tokenizer, model and decoder correctly, so
// this package hands each plain-text segment to it; added tokens are matched
// here first, because sugarme drops text around them.
type wordPiecePipeline struct {
	tk *sugar.Tokenizer
}

func newWordPiecePipeline(data []byte, f *fileJSON) (p *wordPiecePipeline, vocab map[string]int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ComponentError{Component: "model", Type: "WordPiece", Err: fmt.Errorf("%w: sugarme: %v", ErrFormat, r)}
		}
	}()
	tk, err := pretrained.FromReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, &ComponentError{Component: "model", Type: "WordPiece", Err: fmt.Errorf("%w: %w", ErrUnsupported, err)}
	}
	return &wordPiecePipeline{tk: tk}, tk.GetModel().GetVocab(), nil
}

// normalize is the identity: sugarme normalises inside encodeNormalized.
func (p *wordPiecePipeline) normalize(text string) string { return text }

func (p *wordPiecePipeline) encodeNormalized(dst []int, text string) (out []int, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = dst, fmt.Errorf("%w: sugarme WordPiece: %v", ErrUnknownToken, r)
		}
	}()
	enc, err := p.tk.EncodeSingle(text, false)
	if err != nil {
		return dst, fmt.Errorf("tokenizer: WordPiece encode: %w", err)
	}
	return append(dst, enc.GetIds()...), nil
}

func (p *wordPiecePipeline) decodeTokens(tokens []string) (s string, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = "", fmt.Errorf("%w: sugarme WordPiece decode: %v", ErrUnknownID, r)
		}
	}()
	dec := p.tk.GetDecoder()
	if dec == nil {
		return joinSpace(tokens), nil
	}
	return dec.Decode(tokens), nil
}

func joinSpace(tokens []string) string {
	var b bytes.Buffer
	for i, t := range tokens {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return b.String()
}

func (p *wordPiecePipeline) decodesAdded() bool { return true }
