package runtime

import (
	"context"
	"testing"
)

// benchSession opens the Add model ([batch,3] + [batch,3]) with one thread.
func benchSession(b *testing.B) (*Session, []NamedTensor) {
	env := openEnv(b)
	s, err := env.NewSessionFromBytes(context.Background(), "add", addModel(b), SessionOptions{Device: CPU, IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	x := mustTensor(b, []int64{1, 3}, []float32{1, 2, 3})
	return s, []NamedTensor{{"X", x}, {"Y", x}}
}

// BenchmarkRunTiny measures the per-call overhead of Run on a one-node
// model with a non-cancellable context (the floor for any model call).
func BenchmarkRunTiny(b *testing.B) {
	s, in := benchSession(b)
	ctx := context.Background()
	for b.Loop() {
		outs, err := s.Run(ctx, in, []string{"Z"})
		if err != nil {
			b.Fatal(err)
		}
		outs[0].Close()
	}
}

// BenchmarkRunTinyCancellable adds the RunOptions + context.AfterFunc cost
// of a cancellable context (what a server request carries).
func BenchmarkRunTinyCancellable(b *testing.B) {
	s, in := benchSession(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for b.Loop() {
		outs, err := s.Run(ctx, in, []string{"Z"})
		if err != nil {
			b.Fatal(err)
		}
		outs[0].Close()
	}
}

// BenchmarkRunIntoTiny reuses a caller output buffer (no output copy).
func BenchmarkRunIntoTiny(b *testing.B) {
	s, in := benchSession(b)
	z := mustTensor(b, []int64{1, 3}, make([]float32, 3))
	outs := []NamedTensor{{"Z", z}}
	ctx := context.Background()
	for b.Loop() {
		if err := s.RunInto(ctx, in, outs); err != nil {
			b.Fatal(err)
		}
	}
}
