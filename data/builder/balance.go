package builder

import (
	"fmt"

	"github.com/medgr2/medgr2/data"
)

// place puts each draft's correct answer and distractors into option
// letters. Within each split and option count, answer positions are dealt
// from successive random permutations of the letters (block
// randomisation), visiting the drafts in a seeded random order, so every
// letter is the answer equally often (±1 per block) and the letter carries
// no information about the question. Distractors fill the other letters in
// random order.
func place(drafts []draft, seed uint64) ([]data.Item, error) {
	rng := rngFor(seed, "place")
	order := rng.Perm(len(drafts))
	type group struct {
		split string
		n     int
	}
	blocks := map[group][]int{}
	items := make([]data.Item, len(drafts))
	for _, i := range order {
		d := drafts[i]
		n := len(d.distractors) + 1
		g := group{d.item.Split, n}
		if len(blocks[g]) == 0 {
			blocks[g] = rng.Perm(n)
		}
		pos := blocks[g][0]
		blocks[g] = blocks[g][1:]
		opts := make([]string, 0, n)
		distr := shuffled(rng, d.distractors)
		for k := 0; k < n; k++ {
			if k == pos {
				opts = append(opts, d.correct)
				continue
			}
			opts = append(opts, distr[0])
			distr = distr[1:]
		}
		it := d.item
		if err := it.SetOptions(opts); err != nil {
			return nil, fmt.Errorf("builder: %s: %w", it.QuestionID, err)
		}
		it.GTAnswer = d.correct
		if err := it.Validate(); err != nil {
			return nil, fmt.Errorf("builder: generated an invalid item %s: %w", it.QuestionID, err)
		}
		items[i] = it
	}
	return items, nil
}
