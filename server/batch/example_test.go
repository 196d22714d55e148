package batch_test

import (
	"context"
	"fmt"

	"github.com/medgr2/medgr2/server/batch"
)

func Example() {
	b := batch.New(batch.Config{Name: "len", MaxBatch: 16},
		func(_ context.Context, in []string) ([]int, error) {
			out := make([]int, len(in))
			for i, s := range in {
				out[i] = len(s)
			}
			return out, nil
		})
	defer b.Close(context.Background())
	n, stats, err := b.Submit(context.Background(), "chest x-ray", 0)
	fmt.Println(n, stats.BatchSize, err)
	// Output: 11 1 <nil>
}
