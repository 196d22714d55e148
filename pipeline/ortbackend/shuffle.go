package ortbackend

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/medgr2/medgr2/pipeline"
)

// shuffledOptions returns ex followed by copies copies of every example
// with its options in a seeded random order. The gold answer is option
// text, so the answer letter moves with it: the copies teach a policy to
// find the option that holds the answer (a pointer over the prompt) rather
// than one letter per question. Each copy of an example with more than one
// option gets an order other than the original where one exists.
func shuffledOptions(ex []pipeline.Example, copies int, seed uint64) ([]pipeline.Example, error) {
	if copies <= 0 {
		return ex, nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x5f0c))
	out := make([]pipeline.Example, 0, len(ex)*(copies+1))
	out = append(out, ex...)
	for c := 0; c < copies; c++ {
		for _, e := range ex {
			orig := e.Item.Options()
			opts := slices.Clone(orig)
			for try := 0; try < 8; try++ {
				rng.Shuffle(len(opts), func(i, j int) { opts[i], opts[j] = opts[j], opts[i] })
				if !slices.Equal(opts, orig) {
					break
				}
			}
			if err := e.Item.SetOptions(opts); err != nil {
				return nil, fmt.Errorf("%w: example %s: %w", pipeline.ErrData, e.Item.QuestionID, err)
			}
			out = append(out, e)
		}
	}
	return out, nil
}
