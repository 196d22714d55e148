package ortbackend

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/pipeline"
)

// TestLetterLookup checks that every item is measured, that the result is
// a deterministic function of the seed, that chance is the mean of
// 1/len(options), and the bad-input paths.
func TestLetterLookup(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	ex := realExamples(t, 6)
	gen := setup(t, b, pipeline.RoleGenerator, ex)
	items := make([]data.Item, len(ex))
	var chance float64
	for i, e := range ex {
		items[i] = e.Item
		chance += 1 / float64(len(e.Item.Options()))
	}
	chance /= float64(len(items))
	st, err := b.LetterLookup(ctx, gen, items, 3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Items != len(items) || st.Hits < 0 || st.Hits > st.Items {
		t.Fatalf("stats %+v for %d items", st, len(items))
	}
	if math.Abs(st.Chance-chance) > 1e-12 {
		t.Errorf("chance %g, want %g", st.Chance, chance)
	}
	again, err := b.LetterLookup(ctx, gen, items, 3)
	if err != nil || again != st {
		t.Errorf("second run %+v (%v), first %+v", again, err, st)
	}
	if _, err := b.LetterLookup(ctx, gen, nil, 3); !errors.Is(err, pipeline.ErrData) {
		t.Errorf("no items: err = %v, want ErrData", err)
	}
	if _, err := b.LetterLookup(ctx, filepath.Join(t.TempDir(), "missing"), items, 3); err == nil {
		t.Error("missing bundle: no error")
	}
}
