package train

import (
	"context"
	"testing"
)

// BenchmarkGRPOPolicySync is the cost of giving a rollout the current
// weights: rewrite the scratch bundle (models.Rewrite) and reopen it (the
// small test model).
func BenchmarkGRPOPolicySync(b *testing.B) {
	ctx := context.Background()
	bundle := testBundle(b, smallArch(), 21)
	cfg := grpoTiny(b.TempDir(), 1, 1, 0)
	eng, prep := grpoSetup(b, bundle, cfg)
	r, err := newGRPORun(ctx, eng, bundle, prep, modalityTask(b, 8), cfg.withDefaults())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		v, err := r.openPolicy(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGRPORollout is one rollout of the small test model: sync, 2
// prompts × 4 completions of up to 5 tokens, rewards and advantages.
func BenchmarkGRPORollout(b *testing.B) {
	ctx := context.Background()
	bundle := testBundle(b, smallArch(), 22)
	cfg := grpoTiny(b.TempDir(), 1, 1, 0)
	eng, prep := grpoSetup(b, bundle, cfg)
	r, err := newGRPORun(ctx, eng, bundle, prep, modalityTask(b, 8), cfg.withDefaults())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := r.rollout(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
