//go:build rewardexp

package train

// Diagnostic experiment (not run in CI): why does the reward model barely
// rank held-out graded samples? Run with
//
//	MEDGR2_ORT_LIB=/work/main/third_party/ort/libonnxruntime.so.1 \
//	  go test -tags rewardexp -run TestRewardExp -v -timeout 30m ./train/
//
// Env REWARDEXP_VARIANTS picks variants (comma list of names in expVariants);
// REWARDEXP_SEEDS runs each with these data-order seeds (comma list; 1).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medgr2/medgr2/models"
)

type expVariant struct {
	name    string
	steps   int
	lr      float64
	noImage bool
	rank    float64 // LossConfig.RankWeight
	grouped bool    // rows carry their item as Group (one item's samples per batch)
	seed    uint64  // data-order seed (RunConfig.Seed); set from REWARDEXP_SEEDS
}

var expVariants = []expVariant{
	{name: "base", steps: 240, lr: 1e-3},                // the reward test before 800 steps
	{name: "lr", steps: 1500, lr: 3e-3},                 // higher lr, more steps
	{name: "text", steps: 240, lr: 1e-3, noImage: true}, // same as base without the image
	{name: "mse", steps: 800, lr: 1e-3},                 // TestRewardModelRanksLevels before the rank term
	{name: "mseg", steps: 800, lr: 1e-3, grouped: true},
	{name: "rank1", steps: 800, lr: 1e-3, rank: 1, grouped: true},
	{name: "rank1u", steps: 800, lr: 1e-3, rank: 1},
	{name: "rank3", steps: 800, lr: 1e-3, rank: 3, grouped: true},
	{name: "rank10", steps: 800, lr: 1e-3, rank: 10, grouped: true},
	{name: "rank2", steps: 800, lr: 1e-3, rank: 2, grouped: true},
	{name: "rank5", steps: 800, lr: 1e-3, rank: 5, grouped: true},
	{name: "rank3u", steps: 800, lr: 1e-3, rank: 3},
	{name: "rank3long", steps: 1200, lr: 1e-3, rank: 3, grouped: true},
	{name: "rank5u", steps: 800, lr: 1e-3, rank: 5},
	{name: "rank7", steps: 800, lr: 1e-3, rank: 7, grouped: true},
	{name: "rank3lr2", steps: 800, lr: 2e-3, rank: 3, grouped: true},
	{name: "lrmse", steps: 1500, lr: 3e-3, grouped: true},
	{name: "lrrank3", steps: 1500, lr: 3e-3, rank: 3, grouped: true},
}

func TestRewardExp(t *testing.T) {
	ctx := context.Background()
	arch := smallArch()
	vqa := testBundle(t, arch, 2)
	src, err := RewardBundle(ctx, vqa, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	arch = src.Manifest.Architecture
	prep := NewPrep(openVLM(t, src.Dir))
	samples := func(split string, n int) []Sample {
		items := benchmarkItems(t, split)
		s, err := GradedSamples(items[:min(n, len(items))], 5)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	trS, teS := samples("train", 200), samples("test", 40)
	modalityProbe(t, prep, arch.HiddenSize)
	describeSamples(t, teS)
	ceilings(t, teS)
	rows := func(ss []Sample, noImage, grouped bool) []Row {
		out := make([]Row, len(ss))
		for i, s := range ss {
			img := s.ImagePath
			if noImage {
				img = ""
			}
			r, _, err := prep.Row(ctx, s.Question, s.Options, img, s.Answer)
			if err != nil {
				t.Fatal(err)
			}
			r.IDs, r.Target = r.IDs[:r.AnswerEnd], s.Level // as RewardRows
			if grouped {
				r.Group = s.QuestionID
			}
			out[i] = r
		}
		return out
	}
	r0 := rows(teS[:1], false, false)[0]
	t.Logf("row tokens: len(IDs)=%d AnswerStart=%d AnswerEnd=%d (score read at the last ID; RewardPrompt cuts at AnswerEnd)",
		len(r0.IDs), r0.AnswerStart, r0.AnswerEnd)
	want := os.Getenv("REWARDEXP_VARIANTS")
	seeds := []uint64{1}
	if env := os.Getenv("REWARDEXP_SEEDS"); env != "" {
		seeds = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				t.Fatalf("REWARDEXP_SEEDS: %v", err)
			}
			seeds = append(seeds, n)
		}
	}
	var runs []expVariant
	for _, v := range expVariants {
		for _, sd := range seeds {
			v.seed = sd
			runs = append(runs, v)
		}
	}
	for _, v := range runs {
		if want != "" && !strings.Contains(","+want+",", ","+v.name+",") {
			continue
		}
		t0 := time.Now()
		scores, rec := trainAndScore(t, arch, src, prep, rows(trS, v.noImage, v.grouped), rows(teS, v.noImage, false), v)
		t.Logf("=== variant %s seed %d (steps %d, lr %g, image %v, rank weight %g, grouped %v): %.0fs, loss %.2f → %.2f (mse %.2f, rank %.3f at the end)",
			v.name, v.seed, v.steps, v.lr, !v.noImage, v.rank, v.grouped, time.Since(t0).Seconds(), meanOf(rec, "loss", 0, 5),
			meanOf(rec, "loss", v.steps-5, v.steps), meanOf(rec, OutMSE, v.steps-5, v.steps), meanOf(rec, OutRankLoss, v.steps-5, v.steps))
		report(t, teS, scores)
	}
}

func trainAndScore(t *testing.T, a models.ArchConfig, bundle *models.Bundle, prep *Prep, train, test []Row, v expVariant) ([]float64, *Recorder) {
	t.Helper()
	ctx := context.Background()
	ws, err := BundleWeights(bundle)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(ws, DecoderParams(a, true))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := NewEngine(openEnv(t), EngineConfig{Objective: Reward, Arch: a, Loss: LossConfig{RankWeight: v.rank}}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	buckets := Buckets{Batch: 8, Lengths: []int{96, 128, 160, 192}}
	rec, err := Supervised(ctx, eng, prep.Tokens(), train, RunConfig{Steps: v.steps,
		Schedule: Schedule{LR: v.lr, Warmup: 10, Decay: "cosine"}, Buckets: buckets, Seed: v.seed, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	scores, err := scoreRows(ctx, eng, prep.Tokens(), test, buckets)
	if err != nil {
		t.Fatal(err)
	}
	return scores, rec
}

// scoreRows is EvalReward returning the scores.
func scoreRows(ctx context.Context, eng *Engine, tok Tokens, rows []Row, bs Buckets) ([]float64, error) {
	var scores []float64
	for i := 0; i < len(rows); i += bs.Batch {
		chunk := rows[i:min(i+bs.Batch, len(rows))]
		n := 0
		for _, r := range chunk {
			n = max(n, len(r.IDs))
		}
		b, err := bs.For(n)
		if err != nil {
			return nil, err
		}
		batch, err := MakeBatch(Reward, tok, chunk, b, false)
		if err != nil {
			return nil, err
		}
		res, err := eng.Forward(ctx, b, batch.Tensors)
		if err = errors.Join(err, batch.Close()); err != nil {
			return nil, err
		}
		for j := range chunk {
			scores = append(scores, float64(res.Vectors[OutScores][j]))
		}
	}
	return scores, nil
}

func describeSamples(t *testing.T, ss []Sample) {
	seen := map[string]bool{}
	count := map[string]int{}
	for _, s := range ss {
		count[s.Kind]++
		if !seen[s.Kind] {
			seen[s.Kind] = true
			t.Logf("example %-15s lvl %3.0f Q=%q opts=%q A=%q", s.Kind, s.Level, s.Question, s.Options, s.Answer)
		}
	}
	t.Logf("held-out kinds: %v", count)
}

// textOracle scores a sample using only what its text reveals: missing
// tags or the contradiction template → 0; the letter not matching the
// option named in <think> → 6; otherwise (original, swapped_option,
// irrelevant: well-formed and self-consistent) → unknown (NaN).
func textOracle(s Sample) float64 {
	if !strings.HasPrefix(s.Answer, "<think>") || strings.Contains(s.Answer, "does not show") {
		return 0
	}
	th := strings.TrimSuffix(strings.TrimPrefix(s.Answer[:strings.Index(s.Answer, "</think>")], "<think>The image shows "), ".")
	letter := s.Answer[strings.Index(s.Answer, "<answer>")+8 : strings.Index(s.Answer, "</answer>")]
	for i, o := range s.Options {
		if o == th && string(rune('A'+i)) != letter {
			return 6
		}
	}
	return math.NaN()
}

// ceilings prints Spearman ρ of oracles that know different amounts.
func ceilings(t *testing.T, ss []Sample) {
	lv := levels(ss)
	var unk []float64
	for _, s := range ss {
		if math.IsNaN(textOracle(s)) {
			unk = append(unk, float64(s.Level))
		}
	}
	fill := mean(unk)
	kinds := map[string][]string{}
	for _, s := range ss {
		if math.IsNaN(textOracle(s)) {
			kinds["unknown"] = append(kinds["unknown"], s.Kind)
		}
	}
	cnt := map[string]int{}
	for _, k := range kinds["unknown"] {
		cnt[k]++
	}
	t.Logf("text-oracle cannot tell apart: %v (mean level %.2f)", cnt, fill)
	orc := func(f func(Sample) float64) float64 {
		x := make([]float64, len(ss))
		for i, s := range ss {
			x[i] = f(s)
		}
		return Spearman(x, lv)
	}
	t.Logf("ceiling ρ, perfect scores:                         %.3f", orc(func(s Sample) float64 { return float64(s.Level) }))
	t.Logf("ceiling ρ, text only (tags/template/letter-option): %.3f", orc(func(s Sample) float64 {
		if v := textOracle(s); !math.IsNaN(v) {
			return v
		}
		return fill
	}))
	t.Logf("ceiling ρ, only incoherent detected (templates):    %.3f", orc(func(s Sample) float64 {
		if s.Level == LevelIncoherent {
			return 0
		}
		return 5
	}))
	t.Logf("ceiling ρ, text + irrelevant (image-question match): %.3f", orc(func(s Sample) float64 {
		if s.Kind == "irrelevant" {
			return -6
		}
		if v := textOracle(s); !math.IsNaN(v) {
			return v
		}
		return 9 // original or swapped_option: needs the answer itself
	}))
}

func levels(ss []Sample) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = float64(s.Level)
	}
	return out
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// auc is P(score(a) > score(b)) + ½P(tie).
func auc(a, b []float64) float64 {
	var w float64
	for _, x := range a {
		for _, y := range b {
			switch {
			case x > y:
				w++
			case x == y:
				w += 0.5
			}
		}
	}
	return w / float64(len(a)*len(b))
}

func report(t *testing.T, ss []Sample, scores []float64) {
	byLevel, byKind := map[float32][]float64{}, map[string][]float64{}
	for i, s := range ss {
		byLevel[s.Level] = append(byLevel[s.Level], scores[i])
		byKind[s.Kind] = append(byKind[s.Kind], scores[i])
	}
	lvls := []float32{LevelOriginal, LevelPerturbed, LevelIncoherent, LevelIrrelevant}
	var b strings.Builder
	for _, l := range lvls {
		fmt.Fprintf(&b, " %g→%.2f±%.2f", l, mean(byLevel[l]), sd(byLevel[l]))
	}
	t.Logf("held-out ρ = %.3f; mean score by level:%s", Spearman(scores, levels(ss)), b.String())
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	b.Reset()
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s(n=%d)→%.2f", k, len(byKind[k]), mean(byKind[k]))
	}
	t.Logf("mean score by kind:%s", b.String())
	b.Reset()
	for i, hi := range lvls {
		for _, lo := range lvls[i+1:] {
			fmt.Fprintf(&b, " AUC(%g>%g)=%.2f", hi, lo, auc(byLevel[hi], byLevel[lo]))
		}
	}
	t.Logf("pairwise:%s", b.String())
	t.Logf("AUC(original>swapped_option)=%.2f AUC(original>wrong_letter)=%.2f AUC(original>altered_finding)=%.2f AUC(original>contradiction)=%.2f AUC(original>shuffled)=%.2f",
		auc(byKind["original"], byKind["swapped_option"]), auc(byKind["original"], byKind["wrong_letter"]),
		auc(byKind["original"], byKind["altered_finding"]), auc(byKind["original"], byKind["contradiction"]),
		auc(byKind["original"], byKind["shuffled"]))
}

func sd(x []float64) float64 {
	m := mean(x)
	var s float64
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return math.Sqrt(s / float64(max(1, len(x)-1)))
}

// modalityProbe checks whether the (frozen) vision features carry the
// modality at all: nearest centroid of mean-pooled features, centroids
// from train-split images, accuracy on test-split images.
func modalityProbe(t *testing.T, prep *Prep, h int) {
	ctx := context.Background()
	pooled := func(path string) []float64 {
		im, err := prep.Image(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float64, h)
		n := len(im.Features) / h
		for i, f := range im.Features {
			v[i%h] += float64(f) / float64(n)
		}
		return v
	}
	cent, cnt := map[string][]float64{}, map[string]int{}
	for _, it := range benchmarkItems(t, "train") {
		v := pooled(it.ImageFile())
		if cent[it.ModalityType] == nil {
			cent[it.ModalityType] = make([]float64, h)
		}
		for i := range v {
			cent[it.ModalityType][i] += v[i]
		}
		cnt[it.ModalityType]++
	}
	for m := range cent {
		for i := range cent[m] {
			cent[m][i] /= float64(cnt[m])
		}
	}
	var ok, n int
	for _, it := range benchmarkItems(t, "test") {
		v := pooled(it.ImageFile())
		best, bd := "", math.Inf(1)
		for m, c := range cent {
			var d float64
			for i := range v {
				d += (v[i] - c[i]) * (v[i] - c[i])
			}
			if d < bd {
				best, bd = m, d
			}
		}
		n++
		if best == it.ModalityType {
			ok++
		}
	}
	t.Logf("modality probe on frozen vision features (nearest centroid, train→test): %d/%d correct, classes %v", ok, n, cnt)
}
