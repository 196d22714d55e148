package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/queue"
)

// Example runs a three-item job on the embedded store: a job submitted
// before a restart would be picked up the same way after OpenBolt.
func Example() {
	dir, _ := os.MkdirTemp("", "jobs")
	defer os.RemoveAll(dir)
	st, err := queue.OpenBolt(dir, queue.BoltConfig{Block: 10 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	id, _ := st.Submit(ctx, api.JobKindScore, "owner", [][]byte{[]byte(`1`), []byte(`2`), []byte(`3`)})
	w := &queue.Worker{Store: st, Consumer: "example", Process: func(_ context.Context, _ string, p []byte) (json.RawMessage, error) {
		return p, nil
	}}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for {
		if j, _ := st.Status(ctx, id); j.State == api.JobDone {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	_ = st.Results(context.Background(), id, func(line []byte) error {
		fmt.Println(string(line))
		return nil
	})
	// Output:
	// {"index":0,"result":1}
	// {"index":1,"result":2}
	// {"index":2,"result":3}
}
