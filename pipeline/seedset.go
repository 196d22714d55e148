package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// imageGroup is one image with its labelled items (hidden from the loop
// except for seed images and for measuring true accuracy).
type imageGroup struct {
	Image string      // absolute image file
	Items []data.Item // every question about it
}

// groupByImage groups items by image file, in first-seen order.
func groupByImage(items []data.Item) []imageGroup {
	idx := map[string]int{}
	var out []imageGroup
	for _, it := range items {
		f := it.ImageFile()
		i, ok := idx[f]
		if !ok {
			i = len(out)
			idx[f] = i
			out = append(out, imageGroup{Image: f})
		}
		out[i].Items = append(out[i].Items, it)
	}
	return out
}

// SplitSeed chooses the seed set: round(fraction·images) training images
// (at least one per modality present, so every modality has expert data),
// whose items are the labelled seed items; the other images form the
// unlabelled pool. The choice depends only on the items and seed.
func SplitSeed(train []data.Item, fraction float64, seed uint64) (seedItems []data.Item, pool []GenRequest, err error) {
	if fraction <= 0 || fraction > 1 {
		return nil, nil, configError("seed fraction %g is not in (0, 1]", fraction)
	}
	groups := groupByImage(train)
	if len(groups) < 2 {
		return nil, nil, fmt.Errorf("%w: %d training images (need at least 2: seed and pool)", ErrData, len(groups))
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	n := int(math.Round(fraction * float64(len(groups))))
	n = min(max(n, 1), len(groups)-1)
	chosen := make([]bool, len(groups))
	for i := range n {
		chosen[i] = true
	}
	// Every modality gets at least one seed image.
	have := map[string]bool{}
	for i := range n {
		have[groups[i].Items[0].ModalityType] = true
	}
	for i := n; i < len(groups); i++ {
		if m := groups[i].Items[0].ModalityType; !have[m] {
			have[m], chosen[i] = true, true
		}
	}
	for i, g := range groups {
		if chosen[i] {
			seedItems = append(seedItems, g.Items...)
			continue
		}
		it := g.Items[0]
		pool = append(pool, GenRequest{Image: g.Image, Modality: it.ModalityType, Dataset: it.Dataset})
	}
	slices.SortFunc(pool, func(a, b GenRequest) int { return strings.Compare(a.Image, b.Image) })
	return seedItems, pool, nil
}

// Reasoning returns the templated reasoning of a labelled item: the
// expert's short rationale that the seed samples carry.
func Reasoning(it data.Item) string {
	m := it.ModalityType
	if m == "" {
		m = "medical"
	}
	return fmt.Sprintf("The %s image shows %s.", m, it.GTAnswer)
}

// examplesOf pairs items with their templated reasoning.
func examplesOf(items []data.Item) []Example {
	out := make([]Example, len(items))
	for i, it := range items {
		out[i] = Example{Item: it, Reasoning: Reasoning(it)}
	}
	return out
}

// Truth knows the held-back labels of the pool: for each image, the
// correct answer texts of its real questions. It measures the true
// accuracy of generated samples and is never shown to the models.
type Truth struct {
	answers map[string]map[string]bool // image file → normalised correct answers
	wrong   map[string]map[string]bool // image file → normalised distractors
}

// NewTruth indexes the labelled items by image.
func NewTruth(items []data.Item) *Truth {
	t := &Truth{answers: map[string]map[string]bool{}, wrong: map[string]map[string]bool{}}
	for _, it := range items {
		f := it.ImageFile()
		if t.answers[f] == nil {
			t.answers[f], t.wrong[f] = map[string]bool{}, map[string]bool{}
		}
		t.answers[f][data.NormText(it.GTAnswer)] = true
		for _, o := range it.Options() {
			if o != it.GTAnswer {
				t.wrong[f][data.NormText(o)] = true
			}
		}
	}
	for f, w := range t.wrong { // an answer correct for one question is not wrong for the image
		for a := range t.answers[f] {
			delete(w, a)
		}
	}
	return t
}

// Correct reports whether a generated item's answer is a correct answer
// for its image: its gt_answer is the answer of one of the image's real
// questions. A sample whose answer the labels say nothing about counts as
// not correct.
func (t *Truth) Correct(it data.Item) bool {
	return t.answers[it.ImageFile()][data.NormText(it.GTAnswer)]
}
