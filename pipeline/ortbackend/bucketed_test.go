package ortbackend

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/medgr2/medgr2/train"
)

func TestBucketedKeepsGroups(t *testing.T) {
	var rows []train.Row
	for i := range 30 {
		group := fmt.Sprintf("item%d", i/4) // 4 graded samples per item, the last item has 2
		if i >= 24 {
			group = "" // samples of their own
		}
		rows = append(rows, train.Row{IDs: make([]int, 20+7*(i%5)), Group: group, Target: float32(i)})
	}
	for _, size := range []int{3, 8, 16} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			batches := bucketed(rows, size, rand.New(rand.NewPCG(1, 2)))
			seen := map[float32]int{}
			where := map[string]int{}
			for b, batch := range batches {
				if len(batch) == 0 || len(batch) > size {
					t.Fatalf("batch %d has %d rows (size %d)", b, len(batch), size)
				}
				for _, r := range batch {
					seen[r.Target]++
					if r.Group == "" {
						continue
					}
					if w, ok := where[r.Group]; ok && w != b && size >= 4 {
						t.Errorf("group %s split over batches %d and %d", r.Group, w, b)
					}
					where[r.Group] = b
				}
			}
			if len(seen) != len(rows) {
				t.Fatalf("%d distinct rows batched, want %d", len(seen), len(rows))
			}
			for target, n := range seen {
				if n != 1 {
					t.Errorf("row %g batched %d times", target, n)
				}
			}
		})
	}
}
