package ortbackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/preprocessing"
)

// LetterStats is what LetterLookup measured.
type LetterStats struct {
	Hits  int // items whose most likely letter is the one of the option the reasoning names
	Items int // items measured
	// Chance is the expected Hits/Items of a uniform guess: the mean of
	// 1/len(options) over the items.
	Chance float64
}

// Rate returns Hits/Items (0 without items).
func (s LetterStats) Rate() float64 {
	if s.Items == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Items)
}

// LetterLookup measures a generator bundle's answer letter on its own:
// each item's options are shuffled once (seeded), its sample text
// (pipeline.Reasoning, the generator's training target) is fed up to and
// including "<answer>", and a hit is an item whose most likely option
// letter is the letter of the option the reasoning names. Items with an
// empty ImagePath are measured text only.
func (b *Backend) LetterLookup(ctx context.Context, bundle string, items []data.Item, seed uint64) (_ LetterStats, err error) {
	if len(items) == 0 {
		return LetterStats{}, fmt.Errorf("%w: no items", pipeline.ErrData)
	}
	ex := make([]pipeline.Example, len(items))
	for i, it := range items {
		ex[i] = pipeline.Example{Item: it, Reasoning: pipeline.Reasoning(it)}
	}
	shuffled, err := shuffledOptions(ex, 1, seed)
	if err != nil {
		return LetterStats{}, err
	}
	ex = shuffled[len(ex):]
	v, err := b.open(ctx, bundle)
	if err != nil {
		return LetterStats{}, err
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	rows, err := buildRows(ctx, v, pipeline.RoleGenerator, ex, nil, false)
	if err != nil {
		return LetterStats{}, err
	}
	answer, err := v.AnswerToken()
	if err != nil {
		return LetterStats{}, fmt.Errorf("ortbackend: %w", err)
	}
	var st LetterStats
	for i, r := range rows {
		at := answerLetter(r, answer)
		if at < 0 {
			return LetterStats{}, fmt.Errorf("%w: item %s: sample has no %s", ErrBackend, ex[i].Item.QuestionID, models.AnswerOpen)
		}
		best, err := likeliestLetter(ctx, v, r.IDs[:at], ex[i].Item)
		if err != nil {
			return LetterStats{}, fmt.Errorf("item %s: %w", ex[i].Item.QuestionID, err)
		}
		st.Items++
		st.Chance += 1 / float64(len(ex[i].Item.Options()))
		if best == r.IDs[at] {
			st.Hits++
		}
	}
	st.Chance /= float64(st.Items)
	return st, nil
}

// likeliestLetter returns the token of the option letter the model finds
// most likely after prompt.
func likeliestLetter(ctx context.Context, v *models.VLM, prompt []int, it data.Item) (int, error) {
	px, err := pixels(v, it.ImageFile())
	if err != nil {
		return 0, err
	}
	var imgs []*preprocessing.Pixels
	if px != nil {
		imgs = append(imgs, px)
	}
	logits, err := v.LastLogits(ctx, []models.Prompt{{IDs: prompt, Images: imgs}})
	if err != nil {
		return 0, fmt.Errorf("ortbackend: %w", err)
	}
	letters, err := v.LetterTokens(len(it.Options()))
	if err != nil {
		return 0, fmt.Errorf("ortbackend: %w", err)
	}
	row := logits.Row(0)
	best := letters[0]
	for _, id := range letters[1:] {
		if row[id] > row[best] {
			best = id
		}
	}
	return best, nil
}
