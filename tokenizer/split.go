package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// QwenPattern is the pre-tokenizer pattern of the Qwen2, Qwen2.5 and Qwen3
// tokenizers (and, up to the digit rule, of GPT-4's cl100k). Go's RE2 cannot
// compile it because of the look-ahead in `\s+(?!\S)`; this package splits
// text with it through a hand-written matcher (see splitQwen).
const QwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// GPT2Pattern is the pattern of GPT-2's ByteLevel pre-tokenizer
// (use_regex: true), used when a tokenizer.json asks for it.
const GPT2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// splitter cuts a text into pre-tokens; it appends the byte ranges
// [start, end) of every match to dst and returns it.
type splitter interface {
	matches(dst [][2]int, s string) ([][2]int, error)
}

// newSplitter returns the matcher for a pattern: the hand-written one for
// QwenPattern (fast, byte offsets, no allocation per match) and
// github.com/dlclark/regexp2 for any other pattern. regexp2 implements the
// .NET/Perl syntax with look-around, so the pattern keeps its meaning; it
// reports rune offsets, which regexpSplitter converts to byte offsets.
func newSplitter(pattern string, literal bool) (splitter, error) {
	if !literal && pattern == QwenPattern {
		return qwenSplitter{}, nil
	}
	if literal {
		pattern = regexp2.Escape(pattern)
	}
	re, err := regexp2.Compile(pattern, regexp2.Unicode)
	if err != nil {
		return nil, fmt.Errorf("%w: pattern %q: %w", ErrUnsupported, pattern, err)
	}
	return regexpSplitter{re: re}, nil
}

// regexpSplitter matches with a compiled regexp2 pattern. regexp2.Regexp is
// safe for concurrent use.
type regexpSplitter struct{ re *regexp2.Regexp }

func (r regexpSplitter) matches(dst [][2]int, s string) ([][2]int, error) {
	runes := []rune(s)
	// byteAt[i] is the byte offset of rune i; byteAt[len] == len(s).
	byteAt := make([]int, len(runes)+1)
	off := 0
	for i, c := range runes {
		byteAt[i] = off
		off += utf8.RuneLen(c)
	}
	byteAt[len(runes)] = off
	m, err := r.re.FindRunesMatch(runes)
	for err == nil && m != nil {
		dst = append(dst, [2]int{byteAt[m.Index], byteAt[m.Index+m.Length]})
		m, err = r.re.FindNextMatch(m)
	}
	if err != nil {
		return dst, fmt.Errorf("tokenizer: regexp match: %w", err)
	}
	return dst, nil
}

// qwenSplitter is a hand-written equivalent of QwenPattern with the leftmost-
// first semantics of a backtracking engine. Character classes follow Unicode
// as Hugging Face's Rust regex does: \s is White_Space, \p{L} and \p{N} are
// the general categories, (?i) uses simple case folding (so "'ſ" is "'s").
type qwenSplitter struct{}

func (qwenSplitter) matches(dst [][2]int, s string) ([][2]int, error) {
	for i := 0; i < len(s); {
		end := qwenMatchAt(s, i)
		dst = append(dst, [2]int{i, end})
		i = end
	}
	return dst, nil
}

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }
func isS(r rune) bool { return unicode.IsSpace(r) }

// isOther reports whether r is in [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

// runeAt decodes the rune at byte offset i; it returns width 0 at the end.
func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// skipWhile returns the first offset ≥ i whose rune fails pred.
func skipWhile(s string, i int, pred func(rune) bool) int {
	for i < len(s) {
		r, w := runeAt(s, i)
		if !pred(r) {
			break
		}
		i += w
	}
	return i
}

// qwenMatchAt returns the end of the QwenPattern match that starts at i.
// Every rune starts a match (letters, numbers, whitespace and the rest are
// each covered by an alternative), so there are no gaps.
func qwenMatchAt(s string, i int) int {
	c, w := runeAt(s, i)
	if c == '\'' {
		if n := contraction(s, i+1); n > 0 {
			return i + 1 + n
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(c) {
		return skipWhile(s, i+w, isL)
	}
	if c != '\r' && c != '\n' && !isN(c) {
		if c2, w2 := runeAt(s, i+w); w2 > 0 && isL(c2) {
			return skipWhile(s, i+w+w2, isL)
		}
	}
	// \p{N}
	if isN(c) {
		return i + w
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if c == ' ' {
		j += w
	}
	if c2, w2 := runeAt(s, j); w2 > 0 && isOther(c2) {
		j = skipWhile(s, j+w2, isOther)
		return skipWhile(s, j, func(r rune) bool { return r == '\r' || r == '\n' })
	}
	// c is whitespace from here on.
	return whitespaceMatch(s, i)
}

// whitespaceMatch resolves `\s*[\r\n]+|\s+(?!\S)|\s+` at i (s[i] is space).
func whitespaceMatch(s string, i int) int {
	end := skipWhile(s, i, isS)
	lastNL, lastStart := -1, i
	for k := i; k < end; {
		r, w := runeAt(s, k)
		if r == '\r' || r == '\n' {
			lastNL = k + w
		}
		lastStart = k
		k += w
	}
	if lastNL > 0 {
		return lastNL
	}
	if end == len(s) || lastStart == i {
		return end
	}
	return lastStart // \s+(?!\S): leave the last space to the next word
}

// contraction matches (?i:s|t|re|ve|m|ll|d) at i and returns its length.
func contraction(s string, i int) int {
	fold := func(k int) (rune, int) {
		r, w := runeAt(s, k)
		if r == 'ſ' { // U+017F folds to 's'
			return 's', w
		}
		if r == 'K' { // U+212A KELVIN SIGN folds to 'k'
			return 'k', w
		}
		return unicode.ToLower(r), w
	}
	a, wa := fold(i)
	switch a {
	case 's', 't', 'm', 'd':
		return wa
	case 'r', 'v', 'l':
		b, wb := fold(i + wa)
		if (a == 'r' || a == 'v') && b == 'e' || a == 'l' && b == 'l' {
			return wa + wb
		}
	}
	return 0
}
