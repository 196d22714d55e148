//go:build oracle

package ortbackend

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/pipeline"
)

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return d
}
func envF(k string, d float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(k), 64); err == nil {
		return v
	}
	return d
}

// TestOracle is a diagnostic, not part of CI (build tag oracle): it SFTs a
// fresh VQA policy on the whole labelled train split of a pipeline run's
// benchmark (kept modalities), then prints accuracy per question type on
// the first 300 train items, the validation split and the test split.
// It needs a finished data and tokenizer stage under out/pipeline.
// Knobs (env): ORACLE_E epochs (15), ORACLE_LR (0.003), ORACLE_PERM
// option-shuffled copies (0), ORACLE_H/I/L model size (64/192/3),
// ORACLE_N train items (all), ORACLE_STATS=1 prints image-feature stats.
//
//	go test -tags oracle -run TestOracle -v ./pipeline/ortbackend/
func TestOracle(t *testing.T) {
	ctx := context.Background()
	dir := "../../out/pipeline/stages/data"
	tokPath := "../../out/pipeline/stages/tokenizer/tokenizer.json"
	load := func(n string) []data.Item {
		it, err := data.Load(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	keep := func(it []data.Item) []data.Item {
		var o []data.Item
		for _, x := range it {
			if x.ModalityType != "X-Ray" {
				o = append(o, x)
			}
		}
		return o
	}
	tr, va, te := load("xmod_train.jsonl"), load("xmod_validation.jsonl"), keep(load("test.jsonl"))
	if n := envInt("ORACLE_N", 0); n > 0 && n < len(tr) {
		tr = tr[:n]
	}
	mc := pipeline.ModelConfig{HiddenSize: envInt("ORACLE_H", 64), IntermediateSize: envInt("ORACLE_I", 192),
		Layers: envInt("ORACLE_L", 3), VisionWidth: 48, VisionDepth: 1}
	be, err := New(ctx, Options{Arch: mc.Arch, Progress: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	tmp := t.TempDir()
	base, out := filepath.Join(tmp, "base"), filepath.Join(tmp, "out")
	if err := be.NewBundle(ctx, base, pipeline.RoleVQA, tokPath, 1); err != nil {
		t.Fatal(err)
	}
	ex := make([]pipeline.Example, len(tr))
	for i, it := range tr {
		ex[i] = pipeline.Example{Item: it}
	}
	if k := envInt("ORACLE_PERM", 0); k > 0 {
		rng := rand.New(rand.NewPCG(7, 7))
		n := len(ex)
		for c := 0; c < k; c++ {
			for i := 0; i < n; i++ {
				it := ex[i].Item
				o := it.Options()
				rng.Shuffle(len(o), func(a, b int) { o[a], o[b] = o[b], o[a] })
				if err := it.SetOptions(o); err != nil {
					t.Fatal(err)
				}
				ex = append(ex, pipeline.Example{Item: it})
			}
		}
	}
	if os.Getenv("ORACLE_STATS") != "" {
		v, _ := be.open(ctx, base)
		rows, err := buildRows(ctx, v, pipeline.RoleVQA, ex[:64], nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rows[:64:64] {
			if i%4 != 0 {
				continue
			}
			var s, s2 float64
			for _, x := range r.Features {
				s += float64(x)
				s2 += float64(x) * float64(x)
			}
			n := float64(len(r.Features))
			var d float64
			for j, x := range r.Features {
				dd := float64(x - rows[0].Features[j%len(rows[0].Features)])
				d += dd * dd
			}
			fmt.Printf("row %d %s len %d mean %.4f std %.4f distTo0 %.4f\n", i, tr[i].ModalityType, len(r.Features), s/n, math.Sqrt(s2/n-(s/n)*(s/n)), math.Sqrt(d/n))
		}
		v.Close()
	}
	st, err := be.SFT(ctx, base, out, pipeline.RoleVQA, ex, pipeline.TrainOptions{Epochs: envInt("ORACLE_E", 15),
		BatchSize: 16, LearningRate: envF("ORACLE_LR", 0.003), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("train steps %d final loss %.4f\n", st.Steps, st.Metrics["loss"])
	a, closeA, err := be.Answerer(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer closeA()
	for _, set := range []struct {
		n  string
		it []data.Item
	}{{"train(first300)", tr[:min(300, len(tr))]}, {"validation", va}, {"test", te}} {
		res, err := eval.Evaluate(ctx, a, set.it, eval.Options{BatchSize: 32})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s overall %.1f%% (n=%d)\n", set.n, 100*res.Summary.Overall.Accuracy, res.Summary.Overall.N)
		for _, s := range res.Summary.ByQuestionType {
			fmt.Printf("   %-28s %.1f%% (n=%d)\n", s.Group, 100*s.Accuracy, s.N)
		}
		cnt := map[int]int{}
		for _, p := range res.Predictions {
			cnt[p.Predicted]++
		}
		fmt.Printf("   predicted letters %v\n", cnt)
	}
}
