package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/medgr2/medgr2/server/cache"
)

func Example() {
	ctx := context.Background()
	c := cache.NewMemory(100)
	k := cache.Key("v1", "3f2a…", "vqa", "Which modality?", []string{"CT", "MRI"})
	_ = c.Set(ctx, k, []byte(`{"answer":"A"}`), time.Hour)
	b, ok, _ := c.Get(ctx, k)
	fmt.Println(string(b), ok)
	// Output: {"answer":"A"} true
}
