package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedMatcher finds added tokens in text, leftmost first and longest at a
// position, as Hugging Face's AddedVocabulary (Aho-Corasick, LeftmostLongest)
// and transformers.js (longest-first alternation) do.
type addedMatcher struct {
	first  [256]bool             // bytes that can start a token
	byByte map[byte][]AddedToken // candidates by first byte, longest first
}

func newAddedMatcher(tokens []AddedToken) *addedMatcher {
	m := &addedMatcher{byByte: make(map[byte][]AddedToken)}
	for _, t := range tokens {
		if t.Content == "" {
			continue
		}
		b := t.Content[0]
		m.first[b] = true
		m.byByte[b] = append(m.byByte[b], t)
	}
	for _, list := range m.byByte {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].Content) > len(list[j].Content) })
	}
	return m
}

// segment is a piece of the input: either plain text or one added token.
type segment struct {
	text string // the text (for a token: its matched span, whitespace included)
	id   int    // the token id, or -1 for plain text
}

// split appends to dst the segments of s: plain runs and added tokens.
func (m *addedMatcher) split(dst []segment, s string) []segment {
	if m == nil || len(m.byByte) == 0 {
		return append(dst, segment{text: s, id: -1})
	}
	last := 0
	for i := 0; i < len(s); i++ {
		if !m.first[s[i]] {
			continue
		}
		tok, ok := m.matchAt(s, i)
		if !ok {
			continue
		}
		start, end := i, i+len(tok.Content)
		if tok.LStrip {
			start = len(strings.TrimRightFunc(s[last:start], unicode.IsSpace)) + last
		}
		if tok.RStrip {
			end = len(s) - len(strings.TrimLeftFunc(s[end:], unicode.IsSpace))
		}
		if start > last {
			dst = append(dst, segment{text: s[last:start], id: -1})
		}
		dst = append(dst, segment{text: s[start:end], id: tok.ID})
		last = end
		i = end - 1
	}
	if last < len(s) {
		dst = append(dst, segment{text: s[last:], id: -1})
	}
	return dst
}

// matchAt returns the longest added token that matches at i.
func (m *addedMatcher) matchAt(s string, i int) (AddedToken, bool) {
	for _, t := range m.byByte[s[i]] {
		if !strings.HasPrefix(s[i:], t.Content) {
			continue
		}
		if t.SingleWord && !isWordBoundary(s, i, i+len(t.Content)) {
			continue
		}
		return t, true
	}
	return AddedToken{}, false
}

// isWordBoundary reports whether s[start:end] is not glued to word
// characters (alphanumerics or '_') on either side.
func isWordBoundary(s string, start, end int) bool {
	word := func(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }
	if start > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:start]); word(r) {
			return false
		}
	}
	if end < len(s) {
		if r, _ := utf8.DecodeRuneInString(s[end:]); word(r) {
			return false
		}
	}
	return true
}
