package train

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of each update: linear warm-up over
// Warmup steps to LR, then Decay ("constant", "linear" to 0 or "cosine" to
// 0) over the remaining steps of Steps.
type Schedule struct {
	LR     float64 // peak learning rate
	Warmup int     // warm-up updates; 0 starts at LR
	Decay  string  // "constant" (default), "linear" or "cosine"
	Steps  int     // total updates of the run
}

// At returns the learning rate of update step (1-based).
func (s Schedule) At(step int) float64 {
	if s.Warmup > 0 && step <= s.Warmup {
		return s.LR * float64(step) / float64(s.Warmup)
	}
	rest := s.Steps - s.Warmup
	if rest <= 0 {
		return s.LR
	}
	p := math.Min(1, float64(step-s.Warmup)/float64(rest))
	switch s.Decay {
	case "linear":
		return s.LR * (1 - p)
	case "cosine":
		return s.LR * 0.5 * (1 + math.Cos(math.Pi*p))
	}
	return s.LR
}

func (s Schedule) validate() error {
	switch {
	case !(s.LR > 0) || math.IsInf(s.LR, 0):
		return fmt.Errorf("%w: learning rate %g must be > 0", ErrConfig, s.LR)
	case s.Warmup < 0:
		return fmt.Errorf("%w: warmup %d must be ≥ 0", ErrConfig, s.Warmup)
	case s.Decay != "" && s.Decay != "constant" && s.Decay != "linear" && s.Decay != "cosine":
		return fmt.Errorf("%w: lr decay %q (want constant, linear or cosine)", ErrConfig, s.Decay)
	}
	return nil
}
