package ortbackend

import (
	"context"
	"fmt"
	"strings"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// visionPrefix starts the name of every vision-encoder weight.
const visionPrefix = "visual."

// WithVision writes to out a copy of the bundle at base whose vision
// encoder weights are those of the bundle at vision; both must share the
// encoder's architecture.
func (b *Backend) WithVision(ctx context.Context, base, vision, out string) error {
	src, err := models.Load(ctx, base)
	if err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	v, err := models.Load(ctx, vision)
	if err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	if a, c := src.Manifest.Architecture.Vision, v.Manifest.Architecture.Vision; a != c {
		return fmt.Errorf("%w: vision encoders differ: %s has %+v, %s has %+v", ErrBackend, base, a, vision, c)
	}
	weights, _, err := graph.ReadWeights(src.WeightsPath())
	if err != nil {
		return fmt.Errorf("ortbackend: %s: %w", base, err)
	}
	from, _, err := graph.ReadWeights(v.WeightsPath())
	if err != nil {
		return fmt.Errorf("ortbackend: %s: %w", vision, err)
	}
	n := 0
	for name, t := range from {
		if strings.HasPrefix(name, visionPrefix) {
			weights[name] = t
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: %s holds no vision weights", ErrBackend, vision)
	}
	if _, err := models.Rewrite(ctx, src, out, weights); err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	return nil
}
