package builder

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// draft is a question before its options are placed: the correct text and
// the distractors, placed later so answer letters can be balanced.
type draft struct {
	item        data.Item
	correct     string
	distractors []string // already chosen, at most MaxOptions-1
	image       imageRef
}

// fallbackPhrasings are used for a question type only when the reference
// file offers no real phrasing that fits the image's modality.
var fallbackPhrasings = map[string][]string{
	TypeModality: {
		"What imaging modality was used to capture this image?",
		"Which imaging technique is used to generate this image?",
		"What type of imaging was performed to obtain this image?",
	},
	TypeAnatomy: {
		"What is the anatomical area represented in this picture?",
		"Which anatomical area does this image represent?",
		"What part of the body is shown in this image?",
	},
	TypeDiagnosis: {
		"What abnormality can be observed in this image?",
		"What condition is shown in the image?",
		"What is the diagnosis for this image?",
	},
	TypeGrading: {
		"What is the grade of the lesion in this image?",
		"What is the specific abnormality present in this image?",
		"How severe is the finding shown in this image?",
	},
}

// attributePhrasings turn an attribute's description from collection.json
// ("number of white blood cells … in the image") into questions; OmniMedVQA
// has no counting questions to borrow.
var attributePhrasings = []string{
	"What is the %s?",
	"Based on this image, what is the %s?",
	"Looking at this image, which option gives the %s?",
}

// questionSet generates the questions for one collection.
type questionSet struct {
	coll       collectionInfo
	ref        *reference
	phrase     map[string][]string // type → phrasings
	modNames   []string            // correct answers for modality recognition
	modDistr   [][]string          // per other modality, its names
	anatDistr  []string            // anatomy distractors
	labelDistr []string            // diagnosis/grading distractors from other modalities
	attrBins   map[string][]bin    // attribute → value bins
}

func newQuestionSet(ci collectionInfo, ref *reference, all []collectionInfo) *questionSet {
	c := ci.c
	qs := &questionSet{coll: ci, ref: ref, phrase: map[string][]string{}, attrBins: map[string][]bin{}}
	own := ref.match(c.Modality)
	for _, t := range knownTypes {
		if p := ref.phrasings(t, c.Modality); len(p) > 0 {
			qs.phrase[t] = p
		} else {
			qs.phrase[t] = fallbackPhrasings[t]
		}
	}
	qs.modNames = ref.modalityNames(own)
	if len(qs.modNames) == 0 {
		qs.modNames = []string{c.Modality}
	}
	taken := append([]string{c.Modality}, qs.modNames...)
	for _, m := range ref.modalities {
		if m == own {
			continue
		}
		if names := keepApart(ref.modalityNames(m), taken); len(names) > 0 {
			qs.modDistr = append(qs.modDistr, names)
		}
	}
	var anat []string
	for _, o := range all {
		if o.c != c {
			anat = append(anat, o.c.Anatomies()...)
		}
	}
	qs.anatDistr = keepApart(append(anat, ref.otherAnswers(TypeAnatomy, own)...), c.Anatomies())
	switch {
	case c.AnatomyFromLabels():
		qs.labelDistr = qs.anatDistr
	case c.Kind == data.ClassLabels:
		qs.labelDistr = keepApart(ref.otherAnswers(canonicalType(c.Task), own), c.LabelNames())
	default:
		for _, a := range c.ClassKeys() {
			qs.attrBins[a] = makeBins(c.Images, a)
		}
	}
	return qs
}

// otherAnswers returns the short real answers of type t from modalities
// other than own: findings and anatomy as they really appear, certainly
// wrong for an image of the own modality.
func (r *reference) otherAnswers(t, own string) []string {
	var out []string
	for _, m := range r.modalities {
		if m == own {
			continue
		}
		for _, a := range r.answers[t][m] {
			w := strings.Fields(data.NormText(a))
			if len(w) == 0 || len(w) > 4 || w[0] == "no" || w[0] == "yes" {
				continue
			}
			out = append(out, a)
		}
	}
	return dedupe(out)
}

// keepApart drops candidates that share a word of three or more letters
// with any of the taken texts (so "Chest region" is not a distractor for
// "chest", nor "Bacterial pneumonia" for "pneumonia"), then dedupes.
func keepApart(cands, taken []string) []string {
	words := map[string]bool{}
	for _, t := range taken {
		for _, w := range strings.Fields(data.NormText(t)) {
			if len(w) >= 3 {
				words[w] = true
			}
		}
	}
	var out []string
next:
	for _, c := range cands {
		for _, w := range strings.Fields(data.NormText(c)) {
			if words[w] {
				continue next
			}
		}
		out = append(out, c)
	}
	return dedupe(out)
}

// drafts returns the questions for one image, in a fixed order.
func (qs *questionSet) drafts(img imageRef, rng *rand.Rand) []draft {
	c := qs.coll.c
	var out []draft
	add := func(t, suffix, q, correct string, distr []string) {
		distr = pickDistinct(distr, correct, data.MaxOptions-1)
		if len(distr) == 0 {
			return
		}
		it := data.Item{
			QuestionID:   fmt.Sprintf("%s-%s-%s%s", qs.coll.slug, img.stem, slug(t), suffix),
			Dataset:      c.Name,
			QuestionType: t,
			ModalityType: c.Modality,
			Question:     q,
			ImagePath:    img.outPath,
			Split:        img.split,
		}
		out = append(out, draft{item: it, correct: correct, distractors: distr, image: img})
	}
	add(TypeModality, "", pick(rng, qs.phrase[TypeModality]), pick(rng, qs.modNames), pickPerGroup(rng, qs.modDistr))
	if asksCollectionAnatomy(c) {
		add(TypeAnatomy, "", pick(rng, qs.phrase[TypeAnatomy]), c.Anatomy, shuffled(rng, qs.anatDistr))
	}
	if c.Kind == data.ClassLabels {
		t := canonicalType(c.Task)
		correct := c.Labels[img.src.Class]
		others := shuffled(rng, without(c.LabelNames(), correct))
		distr := append(others, shuffled(rng, qs.labelDistr)...)
		add(t, "", pick(rng, qs.phrasingsFor(t)), correct, distr[:min(len(distr), data.MaxOptions-1)])
		return out
	}
	for _, a := range c.ClassKeys() {
		bins := qs.attrBins[a]
		b, ok := binOf(bins, img.src.Attributes[a])
		if !ok || seenBins(bins) < 2 {
			continue
		}
		var distr []string
		for _, o := range bins {
			if o.label != b.label {
				distr = append(distr, o.label)
			}
		}
		q := fmt.Sprintf(pick(rng, attributePhrasings), strings.TrimSpace(c.Labels[a]))
		add(canonicalType(c.Task), "-"+slug(a), q, b.label, distr)
	}
	return out
}

// asksCollectionAnatomy reports whether every image of c gets an anatomy
// question answered by the collection-wide anatomy. A collection whose
// task is anatomy identification asks its anatomy question from the label
// instead; asking the collection-wide anatomy too would write a second item
// with the same id.
func asksCollectionAnatomy(c *data.Collection) bool {
	return c.Anatomy != "" && canonicalType(c.Task) != TypeAnatomy
}

// metadataTypes returns the question types whose answers the builder takes
// from c's metadata (its modality, its collection-wide anatomy) and never
// from an image's label: the modality question always, the anatomy
// question when asksCollectionAnatomy.
func metadataTypes(c *data.Collection) []string {
	out := []string{TypeModality}
	if asksCollectionAnatomy(c) {
		out = append(out, TypeAnatomy)
	}
	return out
}

func (qs *questionSet) phrasingsFor(t string) []string {
	if p := qs.phrase[t]; len(p) > 0 {
		return p
	}
	return fallbackPhrasings[TypeDiagnosis]
}

// pickDistinct returns up to n candidates in random order, skipping texts
// equal (normalised) to the correct one or to each other.
func pickDistinct(cands []string, correct string, n int) []string {
	seen := map[string]bool{data.NormText(correct): true}
	var out []string
	for _, c := range cands {
		k := data.NormText(c)
		if seen[k] || k == "" {
			continue
		}
		seen[k] = true
		out = append(out, c)
		if len(out) == n {
			break
		}
	}
	return out
}

// pickPerGroup draws one text from each group, groups in random order.
func pickPerGroup(rng *rand.Rand, groups [][]string) []string {
	out := make([]string, 0, len(groups))
	for _, i := range rng.Perm(len(groups)) {
		out = append(out, pick(rng, groups[i]))
	}
	return out
}

func pick(rng *rand.Rand, s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[rng.IntN(len(s))]
}

func shuffled(rng *rand.Rand, s []string) []string {
	out := append([]string(nil), s...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func without(s []string, x string) []string {
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// bin is one option of an attribute question: a value, or a range of
// numeric values.
type bin struct {
	label    string
	lo, hi   float64 // numeric range, inclusive
	category string  // non-numeric value
	unseen   bool    // a padding value no image has
}

// maxBins is the number of options an attribute question offers.
const maxBins = data.MaxOptions

// makeBins builds the option bins of attribute a from every image of the
// collection: each distinct value when there are at most maxBins, else
// maxBins contiguous ranges holding about equal numbers of images.
func makeBins(images []data.Image, a string) []bin {
	counts := map[float64]int{}
	cats := map[string]bool{}
	for _, img := range images {
		switch v := img.Attributes[a].(type) {
		case float64:
			counts[v]++
		case string:
			cats[v] = true
		case bool:
			cats[yesNo(v)] = true
		}
	}
	if len(cats) > 0 {
		var out []bin
		for c := range cats {
			out = append(out, bin{label: c, category: c})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].label < out[j].label })
		return out
	}
	vals := make([]float64, 0, len(counts))
	total := 0
	for v, n := range counts {
		vals = append(vals, v)
		total += n
	}
	sort.Float64s(vals)
	if len(vals) <= maxBins {
		out := make([]bin, len(vals), maxBins)
		for i, v := range vals {
			out[i] = bin{label: num(v), lo: v, hi: v}
		}
		// Pad with values just above the largest seen: wrong for every
		// image of the collection, so every question has maxBins options.
		for k := 1; len(out) < maxBins && len(vals) >= 2; k++ {
			v := vals[len(vals)-1] + float64(k)
			out = append(out, bin{label: num(v), lo: v, hi: v, unseen: true})
		}
		return out
	}
	return rangeBins(vals, counts, total)
}

// rangeBins splits the sorted distinct values into maxBins contiguous
// ranges, cutting where the running image count passes each quantile while
// leaving at least one value for every later range.
func rangeBins(vals []float64, counts map[float64]int, total int) []bin {
	var out []bin
	start, acc, k := 0, 0, 1
	for i, v := range vals {
		acc += counts[v]
		rest := len(vals) - 1 - i
		if k < maxBins && rest >= maxBins-k && (acc*maxBins >= k*total || rest == maxBins-k) {
			out = append(out, newRange(vals[start], v))
			start, k = i+1, k+1
		}
	}
	return append(out, newRange(vals[start], vals[len(vals)-1]))
}

func newRange(lo, hi float64) bin {
	if lo == hi {
		return bin{label: num(lo), lo: lo, hi: hi}
	}
	return bin{label: num(lo) + "–" + num(hi), lo: lo, hi: hi}
}

func binOf(bins []bin, v any) (bin, bool) {
	for _, b := range bins {
		switch x := v.(type) {
		case float64:
			if b.category == "" && x >= b.lo && x <= b.hi {
				return b, true
			}
		case string:
			if b.category == x {
				return b, true
			}
		case bool:
			if b.category == yesNo(x) {
				return b, true
			}
		}
	}
	return bin{}, false
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// slug lower-cases s and joins its words with '-', for ids and paths.
func slug(s string) string { return strings.ReplaceAll(data.NormText(s), " ", "-") }

// seenBins counts the bins some image falls in.
func seenBins(bins []bin) int {
	n := 0
	for _, b := range bins {
		if !b.unseen {
			n++
		}
	}
	return n
}
