package data

import (
	"regexp"
	"strings"
	"unicode"
)

var (
	// answerTag captures the content of the last <answer>…</answer> pair.
	answerTag = regexp.MustCompile(`(?is)<answer>\s*(.*?)\s*</answer>`)
	// bareLetter matches an output that is only a letter, maybe decorated:
	// "B", "(B)", "B.", "B)", "B: text", "**B**".
	bareLetter = regexp.MustCompile(`^[\s*(\[]*([A-Da-d])[\s*)\].:]*$`)
	// ledLetter matches an output that starts with a letter and a
	// separator before more text: "B. Pneumonia", "(C) normal", "D: …".
	// "A normal image" does not match (no separator after the article).
	ledLetter = regexp.MustCompile(`(?s)^[\s*(\[]*([A-D])\s*[*)\].:,]+\s*.*$`)
	// statedLetter matches "answer is B", "Answer: (C)", "option D" in free
	// text; the letter must be upper case there, so the article "a" is not
	// taken for option A.
	statedLetter = regexp.MustCompile(`(?i:answer(?:\s+is)?|option|choice)\s*[:：]?\s*[(\[]?([A-D])\b`)
)

// ExtractAnswer finds the option a model chose in its output text. It
// accepts, in order: the content of the last <answer>…</answer> tag (a
// letter or an option's text), an output that is just a letter ("B",
// "(B)", "B. text"), a stated letter ("the answer is B"), and finally the
// text of exactly one option appearing in the output (whole words, case and
// punctuation ignored; an option contained in a longer matching option
// does not count separately). ok is false when nothing, or more than one
// option, matches; a letter beyond the number of options does not match.
func ExtractAnswer(output string, options []string) (index int, ok bool) {
	if len(options) == 0 {
		return -1, false
	}
	if m := answerTag.FindAllStringSubmatch(output, -1); len(m) > 0 {
		return fromSpan(m[len(m)-1][1], options)
	}
	return fromSpan(output, options)
}

// fromSpan reads a letter or an option text from s.
func fromSpan(s string, options []string) (int, bool) {
	s = strings.TrimSpace(s)
	if m := bareLetter.FindStringSubmatch(s); m != nil {
		return letterIndex(m[1], len(options))
	}
	if m := ledLetter.FindStringSubmatch(s); m != nil {
		return letterIndex(m[1], len(options))
	}
	if m := statedLetter.FindAllStringSubmatch(s, -1); len(m) > 0 {
		return letterIndex(m[len(m)-1][1], len(options))
	}
	return matchOptionText(s, options)
}

func letterIndex(l string, n int) (int, bool) {
	i := strings.IndexByte(Letters, byte(unicode.ToUpper(rune(l[0]))))
	if i < 0 || i >= n {
		return -1, false
	}
	return i, true
}

// matchOptionText returns the single option whose normalised text occurs as
// whole words in s.
func matchOptionText(s string, options []string) (int, bool) {
	hay := " " + normText(s) + " "
	var hits []int
	for i, o := range options {
		n := normText(o)
		if n != "" && strings.Contains(hay, " "+n+" ") {
			hits = append(hits, i)
		}
	}
	// Drop hits whose text is part of another hit ("normal" inside
	// "no longer normal"), keeping the most specific option.
	var kept []int
	for _, i := range hits {
		inner := false
		for _, j := range hits {
			ni, nj := normText(options[i]), normText(options[j])
			if i != j && len(nj) > len(ni) && strings.Contains(" "+nj+" ", " "+ni+" ") {
				inner = true
				break
			}
		}
		if !inner {
			kept = append(kept, i)
		}
	}
	if len(kept) != 1 {
		return -1, false
	}
	return kept[0], true
}

// normText lower-cases s and turns every run of non-letters/digits into
// one space, so "X-ray." and "x ray" compare equal.
func normText(s string) string {
	var b strings.Builder
	space := true
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
			space = false
		} else if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	return strings.TrimSpace(b.String())
}

// NormText is the normalisation ExtractAnswer uses to compare texts: lower
// case, every run of characters other than letters and digits as one space,
// trimmed. Builders use it to keep options distinct.
func NormText(s string) string { return normText(s) }
