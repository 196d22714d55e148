package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// bpePipeline is the byte-level BPE path (GPT-2, Qwen2/2.5/3): normalizer,
// Split/ByteLevel pre-tokenizers, BPE model with a word cache, ByteLevel
// decoder.
type bpePipeline struct {
	norms     []func(string) string
	steps     []preStep
	byteLevel *byteLevel // nil when the pre-tokenizer has no ByteLevel step
	model     *bpeModel
	cache     *wordCache // raw pre-token → ids
}

// preStep is one pre-tokenizer: split pieces with sp (if set), optionally
// dropping the matches (behavior "Removed"), and optionally prefix a space.
type preStep struct {
	sp             splitter
	removed        bool
	addPrefixSpace bool
}

func newBPEPipeline(f *fileJSON) (*bpePipeline, map[string]int, error) {
	var m bpeJSON
	if err := json.Unmarshal(f.Model, &m); err != nil {
		return nil, nil, &ComponentError{Component: "model", Type: "BPE", Err: fmt.Errorf("%w: %w", ErrFormat, err)}
	}
	model, err := newBPEModel(&m, 0)
	if err != nil {
		return nil, nil, &ComponentError{Component: "model", Type: "BPE", Err: err}
	}
	p := &bpePipeline{model: model, cache: newWordCache(DefaultCacheSize)}
	if p.norms, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, nil, err
	}
	if err := p.parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, nil, err
	}
	if err := p.checkDecoder(f.Decoder); err != nil {
		return nil, nil, err
	}
	return p, m.Vocab, nil
}

// parseNormalizer supports the Unicode normal forms, Lowercase and
// Sequence of those.
func parseNormalizer(raw json.RawMessage) ([]func(string) string, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType("normalizer", raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "NFC":
		return []func(string) string{normalForm(norm.NFC)}, nil
	case "NFD":
		return []func(string) string{normalForm(norm.NFD)}, nil
	case "NFKC":
		return []func(string) string{normalForm(norm.NFKC)}, nil
	case "NFKD":
		return []func(string) string{normalForm(norm.NFKD)}, nil
	case "Lowercase":
		return []func(string) string{strings.ToLower}, nil
	case "Sequence":
		var seq sequenceJSON
		if err := json.Unmarshal(raw, &seq); err != nil {
			return nil, &ComponentError{Component: "normalizer", Type: typ, Err: fmt.Errorf("%w: %w", ErrFormat, err)}
		}
		var out []func(string) string
		for _, r := range seq.Normalizers {
			fs, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
		}
		return out, nil
	}
	return nil, &ComponentError{Component: "normalizer", Type: typ, Err: ErrUnsupported}
}

// normalForm returns a normaliser that skips the copy for text already in
// the form (the common case).
func normalForm(f norm.Form) func(string) string {
	return func(s string) string {
		if f.IsNormalString(s) {
			return s
		}
		return f.String(s)
	}
}

// parsePreTokenizer reads Split, ByteLevel and Sequence pre-tokenizers.
// A ByteLevel step must come last (it maps bytes to its alphabet).
func (p *bpePipeline) parsePreTokenizer(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	if p.byteLevel != nil {
		return &ComponentError{Component: "pre_tokenizer", Type: "ByteLevel", Err: fmt.Errorf("%w: ByteLevel followed by another pre-tokenizer", ErrUnsupported)}
	}
	typ, err := componentType("pre_tokenizer", raw)
	if err != nil {
		return err
	}
	bad := func(err error) error { return &ComponentError{Component: "pre_tokenizer", Type: typ, Err: err} }
	switch typ {
	case "Sequence":
		var seq sequenceJSON
		if err := json.Unmarshal(raw, &seq); err != nil {
			return bad(fmt.Errorf("%w: %w", ErrFormat, err))
		}
		for _, r := range seq.Pretokenizers {
			if err := p.parsePreTokenizer(r); err != nil {
				return err
			}
		}
		return nil
	case "Split":
		step, err := parseSplit(raw)
		if err != nil {
			return bad(err)
		}
		p.steps = append(p.steps, step)
		return nil
	case "ByteLevel":
		var bl byteLevelJSON
		if err := json.Unmarshal(raw, &bl); err != nil {
			return bad(fmt.Errorf("%w: %w", ErrFormat, err))
		}
		step := preStep{addPrefixSpace: bl.AddPrefixSpace}
		if bl.UseRegex == nil || *bl.UseRegex {
			if step.sp, err = newSplitter(GPT2Pattern, false); err != nil {
				return bad(err)
			}
		}
		p.steps = append(p.steps, step)
		p.byteLevel = newByteLevel()
		return nil
	}
	return bad(ErrUnsupported)
}

// parseSplit reads a "Split" pre-tokenizer with behavior Isolated or
// Removed (the ones byte-level tokenizers use).
func parseSplit(raw json.RawMessage) (preStep, error) {
	var s splitJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		return preStep{}, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if s.Invert {
		return preStep{}, fmt.Errorf("%w: Split invert", ErrUnsupported)
	}
	var step preStep
	switch s.Behavior {
	case "Isolated":
	case "Removed":
		step.removed = true
	default:
		return preStep{}, fmt.Errorf("%w: Split behavior %q", ErrUnsupported, s.Behavior)
	}
	var err error
	switch {
	case s.Pattern.Regex != nil:
		step.sp, err = newSplitter(*s.Pattern.Regex, false)
	case s.Pattern.String != nil:
		step.sp, err = newSplitter(*s.Pattern.String, true)
	default:
		err = fmt.Errorf("%w: Split without pattern", ErrFormat)
	}
	return step, err
}

// checkDecoder accepts the ByteLevel decoder (or none with a ByteLevel
// pre-tokenizer, which decodes the same way).
func (p *bpePipeline) checkDecoder(raw json.RawMessage) error {
	if isNull(raw) {
		if p.byteLevel == nil {
			return &ComponentError{Component: "decoder", Err: fmt.Errorf("%w: BPE without ByteLevel", ErrUnsupported)}
		}
		return nil
	}
	typ, err := componentType("decoder", raw)
	if err != nil {
		return err
	}
	if typ != "ByteLevel" || p.byteLevel == nil {
		return &ComponentError{Component: "decoder", Type: typ, Err: fmt.Errorf("%w: only ByteLevel decoding of byte-level BPE", ErrUnsupported)}
	}
	return nil
}

func (p *bpePipeline) normalize(text string) string {
	for _, f := range p.norms {
		text = f(text)
	}
	return text
}

// encodeNormalized pre-tokenises text and encodes every piece.
func (p *bpePipeline) encodeNormalized(dst []int, text string) ([]int, error) {
	if len(p.steps) == 1 && !p.steps[0].addPrefixSpace && !p.steps[0].removed && p.steps[0].sp != nil {
		return p.encodeOneSplit(dst, text) // Qwen, GPT-2: no intermediate slices
	}
	pieces := []string{text}
	var ranges [][2]int
	for _, st := range p.steps {
		next := make([]string, 0, len(pieces)*2)
		for _, pc := range pieces {
			if st.addPrefixSpace && !strings.HasPrefix(pc, " ") {
				pc = " " + pc
			}
			if st.sp == nil {
				next = append(next, pc)
				continue
			}
			var err error
			if ranges, err = st.sp.matches(ranges[:0], pc); err != nil {
				return dst, err
			}
			next = appendPieces(next, pc, ranges, st.removed)
		}
		pieces = next
	}
	var err error
	for _, pc := range pieces {
		if dst, err = p.encodePiece(dst, pc); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// encodeOneSplit is encodeNormalized for a single Isolated split step.
func (p *bpePipeline) encodeOneSplit(dst []int, text string) ([]int, error) {
	ranges, err := p.steps[0].sp.matches(make([][2]int, 0, len(text)/4+1), text)
	if err != nil {
		return dst, err
	}
	last := 0
	for _, r := range ranges {
		if r[0] > last {
			if dst, err = p.encodePiece(dst, text[last:r[0]]); err != nil {
				return dst, err
			}
		}
		if dst, err = p.encodePiece(dst, text[r[0]:r[1]]); err != nil {
			return dst, err
		}
		last = r[1]
	}
	if last < len(text) {
		return p.encodePiece(dst, text[last:])
	}
	return dst, nil
}

// appendPieces appends the gaps between the matches of pc and, unless
// removed, the matches themselves (Split behaviour Isolated keeps both).
func appendPieces(dst []string, pc string, ranges [][2]int, removed bool) []string {
	last := 0
	for _, r := range ranges {
		if r[0] > last {
			dst = append(dst, pc[last:r[0]])
		}
		if !removed && r[1] > r[0] {
			dst = append(dst, pc[r[0]:r[1]])
		}
		last = r[1]
	}
	if last < len(pc) {
		dst = append(dst, pc[last:])
	}
	return dst
}

// encodePiece encodes one pre-token through the cache.
func (p *bpePipeline) encodePiece(dst []int, pc string) ([]int, error) {
	if pc == "" {
		return dst, nil
	}
	if ids, ok := p.cache.get(pc); ok {
		return append(dst, ids...), nil
	}
	word := pc
	if p.byteLevel != nil {
		word = p.byteLevel.encode(pc)
	}
	ids, err := p.model.encodeWord(nil, word)
	if err != nil {
		return dst, err
	}
	p.cache.put(pc, ids)
	return append(dst, ids...), nil
}

// decodeTokens maps byte-level tokens back to bytes and then to text.
func (p *bpePipeline) decodeTokens(tokens []string) (string, error) {
	var buf []byte
	for _, tok := range tokens {
		buf = p.byteLevel.decodeAppend(buf, tok)
	}
	return lossyUTF8(buf), nil
}

func (p *bpePipeline) decodesAdded() bool { return false }
