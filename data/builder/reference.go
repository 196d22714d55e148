package builder

import (
	"sort"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// OmniMedVQA's question types, the names the builder writes to
// question_type. Collections name their task in lower case; canonicalType
// maps it onto these.
const (
	TypeModality  = "Modality Recognition"
	TypeAnatomy   = "Anatomy Identification"
	TypeDiagnosis = "Disease Diagnosis"
	TypeGrading   = "Lesion Grading"
	TypeAttribute = "Other Biological Attributes"
)

var knownTypes = []string{TypeModality, TypeAnatomy, TypeDiagnosis, TypeGrading, TypeAttribute}

// canonicalType maps a task or question type string to OmniMedVQA's
// spelling, case-insensitively; unknown strings are returned trimmed.
func canonicalType(s string) string {
	n := data.NormText(s)
	for _, t := range knownTypes {
		if data.NormText(t) == n {
			return t
		}
	}
	return strings.TrimSpace(s)
}

// genericWords are words of modality names that say nothing about the
// modality ("Microscopy Images"), so they do not mark a phrasing as
// belonging to one modality.
var genericWords = map[string]bool{"image": true, "images": true, "imaging": true, "picture": true}

// yesNoLead are first words of yes/no questions; such phrasings cannot take
// a list of named options.
var yesNoLead = map[string]bool{
	"is": true, "are": true, "does": true, "do": true, "can": true, "could": true, "was": true,
	"were": true, "has": true, "have": true, "will": true, "should": true, "would": true,
}

// reference indexes real OmniMedVQA questions: their phrasings and answer
// texts by question type and modality, and how widely each word is used.
type reference struct {
	modalities []string                       // distinct modality_type values, sorted
	questions  map[string]map[string][]string // type → modality → distinct questions
	answers    map[string]map[string][]string // type → modality → distinct gt answers
	wordMods   map[string]map[string]bool     // word → modalities whose questions use it
	keywords   map[string]map[string]bool     // modality → its name's words
}

func newReference(items []data.Item) *reference {
	r := &reference{
		questions: map[string]map[string][]string{},
		answers:   map[string]map[string][]string{},
		wordMods:  map[string]map[string]bool{},
		keywords:  map[string]map[string]bool{},
	}
	seenQ, seenA := map[string]bool{}, map[string]bool{}
	for _, it := range items {
		m := it.ModalityType
		if _, ok := r.keywords[m]; !ok {
			r.modalities = append(r.modalities, m)
			r.keywords[m] = modalityKeywords(m)
		}
		for _, w := range strings.Fields(data.NormText(it.Question)) {
			if r.wordMods[w] == nil {
				r.wordMods[w] = map[string]bool{}
			}
			r.wordMods[w][m] = true
		}
		t := canonicalType(it.QuestionType)
		if t == "" {
			continue
		}
		if k := t + "\x00" + m + "\x00" + it.Question; !seenQ[k] {
			seenQ[k] = true
			addTo(r.questions, t, m, strings.TrimSpace(it.Question))
		}
		if k := t + "\x00" + m + "\x00" + it.GTAnswer; !seenA[k] {
			seenA[k] = true
			addTo(r.answers, t, m, strings.TrimSpace(it.GTAnswer))
		}
	}
	sort.Strings(r.modalities)
	return r
}

func addTo(m map[string]map[string][]string, t, mod, s string) {
	if m[t] == nil {
		m[t] = map[string][]string{}
	}
	m[t][mod] = append(m[t][mod], s)
}

// modalityKeywords returns the distinctive words of a modality name.
func modalityKeywords(m string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.Fields(data.NormText(m)) {
		if !genericWords[w] {
			out[w] = true
		}
	}
	return out
}

// match returns the reference modality a collection modality corresponds
// to: equal after normalisation, else the one sharing most name words; ""
// when none shares any.
func (r *reference) match(modality string) string {
	n := data.NormText(modality)
	kw := modalityKeywords(modality)
	best, bestN := "", 0
	for _, m := range r.modalities {
		if data.NormText(m) == n {
			return m
		}
		c := 0
		for w := range kw {
			if r.keywords[m][w] {
				c++
			}
		}
		if c > bestN {
			best, bestN = m, c
		}
	}
	return best
}

// foreignWord reports whether w names a modality other than target.
func (r *reference) foreignWord(w string, target map[string]bool) bool {
	if target[w] {
		return false
	}
	for _, kw := range r.keywords {
		if kw[w] {
			return true
		}
	}
	return false
}

// minWordSpread is how many modalities' questions must use a word before a
// phrasing containing it counts as generic (usable for any image).
const minWordSpread = 3

// generic reports whether a real question can be asked of an image of the
// target modality: not a yes/no or either/or question, no word naming
// another modality, and every other word used across at least
// minWordSpread modalities (so "Which joint does the bone…" is not asked of
// a chest X-ray).
func (r *reference) generic(q string, target map[string]bool) bool {
	words := strings.Fields(data.NormText(q))
	if len(words) == 0 || yesNoLead[words[0]] || !strings.HasSuffix(strings.TrimSpace(q), "?") {
		return false
	}
	for _, w := range words {
		if w == "or" || r.foreignWord(w, target) {
			return false
		}
		if !target[w] && len(r.wordMods[w]) < minWordSpread {
			return false
		}
	}
	return true
}

// phrasings returns real questions of type t usable for an image of the
// given collection modality: those from the matching reference modality
// first, then generic ones from the others. Empty when none qualify.
func (r *reference) phrasings(t, modality string) []string {
	ref := r.match(modality)
	target := modalityKeywords(modality)
	for w := range r.keywords[ref] {
		target[w] = true
	}
	var own, other []string
	for _, m := range r.modalities {
		for _, q := range r.questions[t][m] {
			if !r.generic(q, target) {
				continue
			}
			if m == ref {
				own = append(own, q)
			} else {
				other = append(other, q)
			}
		}
	}
	return dedupe(append(own, other...))
}

// modalityNames returns clean modality-recognition answers of reference
// modality m: answers that contain a word of m's name and no word used only
// by m's answers (so "Chest X-ray" is not a name for every X-ray).
func (r *reference) modalityNames(m string) []string {
	spread := map[string]map[string]bool{}
	for mod, as := range r.answers[TypeModality] {
		for _, a := range as {
			for _, w := range strings.Fields(data.NormText(a)) {
				if spread[w] == nil {
					spread[w] = map[string]bool{}
				}
				spread[w][mod] = true
			}
		}
	}
	var out []string
	for _, a := range r.answers[TypeModality][m] {
		named, clean := false, true
		for _, w := range strings.Fields(data.NormText(a)) {
			switch {
			case r.keywords[m][w]:
				named = true
			case len(spread[w]) < 2:
				clean = false
			}
		}
		if named && clean {
			out = append(out, a)
		}
	}
	return dedupe(out)
}

// dedupe drops texts equal to an earlier one after normalisation.
func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, s := range in {
		n := data.NormText(s)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, s)
	}
	return out
}
