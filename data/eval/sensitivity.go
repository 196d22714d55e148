package eval

import (
	"context"
	"errors"
	"math"

	"github.com/medgr2/medgr2/data"
)

// ErrNoSwap is returned by ImageSensitivity when no item has an image of
// another modality to swap in.
var ErrNoSwap = errors.New("image sensitivity: no item has an image of another modality to swap in")

// Sensitivity says how much an answerer's answers depend on the image.
type Sensitivity struct {
	// N is the number of items measured: those with an image of another
	// modality to swap in.
	N int `json:"n"`
	// MeanTV is the mean total-variation distance between the option
	// distributions given the item's own image and given the swapped one
	// (0: the image is ignored; 1: the answer moves entirely).
	MeanTV float64 `json:"mean_tv"`
	// Changed is the share of items whose predicted option changes.
	Changed float64 `json:"changed"`
	// Accuracy and SwappedAccuracy are the accuracies over the N items
	// with their own and with the swapped images.
	Accuracy        float64 `json:"accuracy"`
	SwappedAccuracy float64 `json:"swapped_accuracy"`
}

// ImageSensitivity answers items twice: as given, and with each item's
// image replaced by the image of the next item (cyclically, in order)
// whose modality differs. Items with no such partner are left out. An
// answer without option probabilities counts as all mass on its
// predicted option (none when unparsed).
func ImageSensitivity(ctx context.Context, a Answerer, items []data.Item, opt Options) (Sensitivity, error) {
	var own, swapped []data.Item
	for i, it := range items {
		for k := 1; k < len(items); k++ {
			o := items[(i+k)%len(items)]
			if o.ModalityType != it.ModalityType && o.ImageFile() != it.ImageFile() {
				s := it
				s.ImagePath, s.Root = o.ImagePath, o.Root
				own, swapped = append(own, it), append(swapped, s)
				break
			}
		}
	}
	if len(own) == 0 {
		return Sensitivity{}, ErrNoSwap
	}
	desc := opt.Description
	opt.Description = desc + " (own images)"
	a1, err := Evaluate(ctx, a, own, opt)
	if err != nil {
		return Sensitivity{}, err
	}
	opt.Description = desc + " (swapped images)"
	a2, err := Evaluate(ctx, a, swapped, opt)
	if err != nil {
		return Sensitivity{}, err
	}
	s := Sensitivity{N: len(own)}
	var tv float64
	var changed, ok1, ok2 int
	for i := range own {
		p, q := a1.Predictions[i], a2.Predictions[i]
		tv += totalVariation(dist(p, len(own[i].Options())), dist(q, len(own[i].Options())))
		if p.Predicted != q.Predicted {
			changed++
		}
		if p.Correct {
			ok1++
		}
		if q.Correct {
			ok2++
		}
	}
	n := float64(s.N)
	s.MeanTV, s.Changed = tv/n, float64(changed)/n
	s.Accuracy, s.SwappedAccuracy = float64(ok1)/n, float64(ok2)/n
	return s, nil
}

// dist returns a prediction's option distribution over n options.
func dist(p Prediction, n int) []float64 {
	if len(p.OptionProbs) == n {
		return p.OptionProbs
	}
	d := make([]float64, n)
	if p.Predicted >= 0 && p.Predicted < n {
		d[p.Predicted] = 1
	}
	return d
}

// totalVariation is half the L1 distance between two distributions.
func totalVariation(p, q []float64) float64 {
	var s float64
	for i := range p {
		s += math.Abs(p[i] - q[i])
	}
	return s / 2
}
