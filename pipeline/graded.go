package pipeline

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// The paper's four reward levels.
const (
	LevelOriginal   = 10.0 // the sample as written by the expert (or accepted)
	LevelPerturbed  = 6.0  // a small factual error: wrong letter, swapped option, altered finding
	LevelIncoherent = 0.0  // reasoning that contradicts the answer, shuffled text
	LevelIrrelevant = -6.0 // the question belongs to another image or modality
)

// GradeSamples builds the reward model's training set from good samples:
// each original at level 10 and, per original, every perturbed (6) and
// every incoherent (0) variant and one irrelevant (−6) one:
//
//   - perturbed: "wrong_letter" (the answer letter names another option,
//     reasoning unchanged), "swapped_option" (the correct text and a
//     distractor trade places, letter unchanged), "altered_finding" (the
//     reasoning names a distractor, answer unchanged);
//   - incoherent: "contradiction" (the reasoning rejects the chosen
//     answer without naming it), "shuffled_text" (question and reasoning
//     words shuffled);
//   - irrelevant: "other_image" (the question, options and answer of a
//     sample about an image of another modality, or another image when
//     there is one modality).
//
// Every kind is built for every original (not one kind per original in
// turn) because the first three are exactly how a small generator fails
// (its reasoning names one option and its letter another), and the
// reward model sees few originals. The result depends only on the
// examples and seed.
func GradeSamples(good []Example, seed uint64) []Graded {
	rng := rand.New(rand.NewPCG(seed, 0x9aded))
	var out []Graded
	for i, ex := range good {
		group := fmt.Sprintf("%d:%s", i, ex.Item.QuestionID)
		out = append(out, Graded{Example: ex, Level: LevelOriginal, Kind: "original", Group: group})
		for k, kind := range perturbKinds {
			if p, ok := perturb(ex, k, rng); ok {
				out = append(out, Graded{Example: p, Level: LevelPerturbed, Kind: kind, Group: group})
			}
		}
		for k, kind := range incoherentKinds {
			out = append(out, Graded{Example: incoherent(ex, k, rng), Level: LevelIncoherent, Kind: kind, Group: group})
		}
		if o, ok := irrelevant(good, i, rng); ok {
			out = append(out, Graded{Example: o, Level: LevelIrrelevant, Kind: "other_image", Group: group})
		}
	}
	return out
}

var (
	perturbKinds    = [3]string{"wrong_letter", "swapped_option", "altered_finding"}
	incoherentKinds = [2]string{"contradiction", "shuffled_text"}
)

// perturb returns a variant with one small factual error; ok is false
// when the item has fewer than two options.
func perturb(ex Example, kind int, rng *rand.Rand) (Example, bool) {
	opts := ex.Item.Options()
	gold, err := ex.Item.AnswerIndex()
	if err != nil || len(opts) < 2 {
		return ex, false
	}
	other := (gold + 1 + rng.IntN(len(opts)-1)) % len(opts)
	out := ex
	switch kind {
	case 0: // wrong letter
		out.Item.GTAnswer = opts[other]
	case 1: // swapped option: the letter now names the distractor's text
		opts = append([]string(nil), opts...)
		opts[gold], opts[other] = opts[other], opts[gold]
		_ = out.Item.SetOptions(opts)
		out.Item.GTAnswer = opts[gold]
	default: // altered finding
		out.Reasoning = replaceAnswer(ex.Reasoning, ex.Item.GTAnswer, opts[other])
	}
	return out, true
}

// incoherent returns a variant whose reasoning contradicts its answer or
// whose text is shuffled.
func incoherent(ex Example, kind int, rng *rand.Rand) Example {
	out := ex
	if kind == 0 {
		// The rejection names no option: were it to repeat the answer, a
		// reasoning that names the chosen option would mark an original
		// and a level-0 sample alike, and a small reward model would learn
		// that naming the answer is worth nothing.
		out.Reasoning = "The image does not support the chosen answer; that option is ruled out."
		return out
	}
	out.Item.Question = shuffleWords(ex.Item.Question, rng)
	out.Reasoning = shuffleWords(ex.Reasoning, rng)
	return out
}

// irrelevant pairs example i's image with the question of another
// example, preferring one of another modality; ok is false when there is
// no other example.
func irrelevant(all []Example, i int, rng *rand.Rand) (Example, bool) {
	if len(all) < 2 {
		return Example{}, false
	}
	me := all[i].Item
	pick := -1
	for try := 0; try < 8; try++ {
		j := rng.IntN(len(all))
		o := all[j].Item
		if j == i || o.ImageFile() == me.ImageFile() {
			continue
		}
		pick = j
		if o.ModalityType != me.ModalityType {
			break
		}
	}
	if pick < 0 {
		return Example{}, false
	}
	out := all[pick]
	out.Item.ImagePath, out.Item.Root = me.ImagePath, me.Root
	out.Item.ModalityType, out.Item.Dataset = me.ModalityType, me.Dataset
	return out, true
}

// replaceAnswer swaps the answer text in the reasoning for another, or
// appends a sentence naming it when the answer is not quoted.
func replaceAnswer(reasoning, answer, other string) string {
	if answer != "" && strings.Contains(reasoning, answer) {
		return strings.ReplaceAll(reasoning, answer, other)
	}
	return reasoning + " It shows " + other + "."
}

// shuffleWords returns s with its words in a random order (different from
// the original when there are at least two distinct words).
func shuffleWords(s string, rng *rand.Rand) string {
	w := strings.Fields(s)
	if len(w) < 2 {
		return s
	}
	for try := 0; try < 4; try++ {
		rng.Shuffle(len(w), func(i, j int) { w[i], w[j] = w[j], w[i] })
		if out := strings.Join(w, " "); out != s {
			return out
		}
	}
	return strings.Join(w, " ")
}

// templateOf is the diversity key of a question: its normalised text with
// digits removed, so "how many cells (3)" variants share a template.
func templateOf(it data.Item) string {
	q := data.NormText(it.Question)
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, q)
}
