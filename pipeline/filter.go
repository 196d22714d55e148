package pipeline

import (
	"math"
	"slices"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// Candidate is one generated sample as the loop tracks it: what was
// generated, its reward score, whether it was accepted, and (for the log
// only) whether its answer is truly correct.
type Candidate struct {
	Generated
	Round    int     `json:"round"`
	Deduped  int     `json:"deduped_options,omitempty"` // repeated options the loop dropped (data.Item.DedupeOptions)
	Score    float64 `json:"score"`                     // reward-model score; NaN-free, −inf never stored
	Accepted bool    `json:"accepted"`                  // passed the filter
	Correct  bool    `json:"correct"`                   // answer matches the held-back label (measurement only)
	Coherent bool    `json:"coherent"`                  // the reasoning names the chosen option and no other (Coherent)
}

// Verified reports whether c was accepted and passes the check verify
// names (a Config.Verify value): the samples a round retrains on and the
// filtered policy trains on.
func (c Candidate) Verified(verify string) bool {
	return c.Accepted && (verify == VerifyNone || c.Coherent)
}

// The values of Config.Verify.
const (
	VerifyCoherent = "coherent" // accepted samples must be Coherent to be retrained on
	VerifyNone     = "none"     // every accepted sample is retrained on
)

// Coherent reports whether a parsed sample's reasoning names the text of
// the option its answer letter chooses and names no other option (an
// option whose text lies inside the chosen one's does not count). It reads
// the sample's text only, never a label. The filter never selects on it;
// with Config.Verify "coherent" it decides which accepted samples a round
// retrains on, and the rounds log reports it for accepted and for all
// parsed samples.
func Coherent(it data.Item, reasoning string) bool {
	r := " " + data.NormText(reasoning) + " "
	chosen := data.NormText(it.GTAnswer)
	if chosen == "" || !strings.Contains(r, " "+chosen+" ") {
		return false
	}
	for _, o := range it.Options() {
		n := data.NormText(o)
		if n == "" || n == chosen || strings.Contains(" "+chosen+" ", " "+n+" ") {
			continue
		}
		if strings.Contains(r, " "+n+" ") {
			return false
		}
	}
	return true
}

// FilterResult says what the filter did.
type FilterResult struct {
	Eligible       int // parsed samples that passed τ or top-k
	Accepted       int // after the diversity rule
	DroppedByShare int // eligible samples dropped because their template was at its cap
}

// Filter marks accepted candidates in place: parsed samples scoring at
// least τ (or, when cfg.TopK > 0, the k best; when cfg.TopFraction > 0,
// the best fraction of the parsed samples) in score order, where no
// question template may take more than MaxTemplateShare of the eligible
// samples (at least one sample per template is always allowed). Ties in
// score keep generation order.
func Filter(cands []Candidate, cfg FilterConfig) FilterResult {
	order := make([]int, 0, len(cands))
	for i := range cands {
		cands[i].Accepted = false
		if cands[i].Err == "" && !math.IsNaN(cands[i].Score) {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		sa, sb := cands[a].Score, cands[b].Score
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	switch {
	case cfg.TopK > 0:
		order = order[:min(cfg.TopK, len(order))]
	case cfg.TopFraction > 0:
		order = order[:min(int(math.Ceil(cfg.TopFraction*float64(len(order)))), len(order))]
	default:
		tau := 5.0
		if cfg.Threshold != nil {
			tau = *cfg.Threshold
		}
		n := 0
		for n < len(order) && cands[order[n]].Score >= tau {
			n++
		}
		order = order[:n]
	}
	share := cfg.MaxTemplateShare
	if share <= 0 || share > 1 {
		share = 1
	}
	limit := max(1, int(math.Ceil(share*float64(len(order)))))
	res := FilterResult{Eligible: len(order)}
	count := map[string]int{}
	for _, i := range order {
		t := templateOf(cands[i].Item)
		if count[t] >= limit {
			res.DroppedByShare++
			continue
		}
		count[t]++
		cands[i].Accepted = true
		res.Accepted++
	}
	return res
}
