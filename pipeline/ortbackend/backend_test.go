package ortbackend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

const shared = "../../../shared/data"

// tinyArch keeps test models small and fast.
func tinyArch(vocab int) models.ArchConfig {
	return pipeline.ModelConfig{HiddenSize: 32, IntermediateSize: 64, Layers: 1}.Arch(vocab)
}

// newBackend opens ONNX Runtime; a missing library fails loudly.
func newBackend(t testing.TB) *Backend {
	t.Helper()
	b, err := New(context.Background(), Options{LibraryPath: os.Getenv("MEDGR2_ORT_LIB"), Arch: tinyArch, Threads: 1})
	if err != nil {
		t.Fatalf("ONNX Runtime is required (run `make ort`, set MEDGR2_ORT_LIB): %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// realExamples returns n labelled diagnosis items on real images, taken
// in turn from PneumoniaMNIST (chest X-ray) and BUSI (breast ultrasound).
func realExamples(t testing.TB, n int) []pipeline.Example {
	t.Helper()
	var cols []*data.Collection
	for _, name := range []string{"pneumoniamnist", "busi"} {
		col, err := data.LoadCollection(filepath.Join(shared, name))
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, col)
	}
	var out []pipeline.Example
	for i := range n {
		col := cols[i%2]
		img := col.Images[i/2]
		it := data.Item{QuestionID: col.Name + "/" + img.Path, Dataset: col.Name, ModalityType: col.Modality,
			Question: "What is the " + col.Anatomy + " diagnosis?", ImagePath: col.ImageFile(img)}
		_ = it.SetOptions(col.LabelNames())
		it.GTAnswer = col.Labels[img.Class]
		out = append(out, pipeline.Example{Item: it, Reasoning: pipeline.Reasoning(it)})
	}
	return out
}

// setup trains a tokenizer and exports a bundle of role.
func setup(t testing.TB, b *Backend, role pipeline.Role, ex []pipeline.Example) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var corpus []string
	for _, e := range ex {
		corpus = append(corpus, pipeline.SampleText(e), e.Item.ModalityType+" "+e.Item.Dataset)
	}
	tok := filepath.Join(dir, "tokenizer.json")
	if err := b.Tokenizer(ctx, tok, corpus, 400); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	if err := b.NewBundle(ctx, bundle, role, tok, 1); err != nil {
		t.Fatal(err)
	}
	return bundle
}

func TestSampleTextParses(t *testing.T) {
	for _, e := range realExamples(t, 3) {
		s, err := models.ParseSample(pipeline.SampleText(e))
		if err != nil {
			t.Fatal(err)
		}
		if s.Item.Question != e.Item.Question || s.Item.GTAnswer != e.Item.GTAnswer || s.Reasoning != e.Reasoning {
			t.Errorf("round trip: %+v vs %+v", s.Item, e.Item)
		}
	}
}

// TestFastPathRows checks the policy's training prompt is the fast path's:
// option probabilities from the row's prompt equal AnswerFast's.
func TestFastPathRows(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	ex := realExamples(t, 3)
	bundle := setup(t, b, pipeline.RoleVQA, ex)
	v, err := b.open(ctx, bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rows, err := buildRows(ctx, v, pipeline.RoleVQA, ex, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		px, err := pixels(v, ex[i].Item.ImageFile())
		if err != nil {
			t.Fatal(err)
		}
		logits, err := v.LastLogits(ctx, []models.Prompt{{IDs: r.IDs[:r.AnswerStart], Images: []*preprocessing.Pixels{px}}})
		if err != nil {
			t.Fatal(err)
		}
		ans, err := v.Answer(ctx, []models.VQARequest{{Pixels: px, Question: ex[i].Item.Question, Options: ex[i].Item.Options()}}, models.ReasonOptions{})
		if err != nil {
			t.Fatal(err)
		}
		letters, _ := v.LetterTokens(len(ex[i].Item.Options()))
		lp := logSoftmax(logits.Row(0), 1)
		z := 0.0
		for _, l := range letters {
			z += math.Exp(lp[l])
		}
		p0 := math.Exp(lp[letters[0]]) / z
		if math.Abs(p0-ans[0].Probs[0]) > 1e-4 {
			t.Errorf("row %d: P(A) %.6f from the training prompt, %.6f from Answer", i, p0, ans[0].Probs[0])
		}
		gold, _ := ex[i].Item.AnswerIndex()
		if r.IDs[r.AnswerStart] != letters[gold] {
			t.Errorf("row %d: first answer token %d, want the letter %d", i, r.IDs[r.AnswerStart], letters[gold])
		}
		if len(r.Features) != px.ImageTokens()*v.Manifest().Architecture.HiddenSize {
			t.Errorf("row %d: %d feature values", i, len(r.Features))
		}
	}
}

// TestSFTMemorises trains the policy on a few examples until it answers
// them, and checks the saved bundle is a valid bundle with new weights.
func TestSFTMemorises(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	ex := realExamples(t, 8)
	base := setup(t, b, pipeline.RoleVQA, ex)
	out := filepath.Join(t.TempDir(), "trained")
	st, err := b.SFT(ctx, base, out, pipeline.RoleVQA, ex, pipeline.TrainOptions{Epochs: 60, BatchSize: 8, LearningRate: 5e-3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Steps < 60 || !(tail(st.Curve) < st.Curve[0]/3) { // one batch per length bucket per epoch
		t.Fatalf("steps %d, loss %.3f → %.3f", st.Steps, st.Curve[0], tail(st.Curve))
	}
	if _, err := models.Load(ctx, out); err != nil {
		t.Fatalf("trained bundle: %v", err)
	}
	capped, err := b.SFT(ctx, base, filepath.Join(t.TempDir(), "capped"), pipeline.RoleVQA, ex,
		pipeline.TrainOptions{Epochs: 60, BatchSize: 8, LearningRate: 5e-3, Seed: 1, MaxSteps: 7})
	if err != nil || capped.Steps != 7 || len(capped.Curve) != 7 {
		t.Errorf("SFT with max_steps 7: %d steps, %v", capped.Steps, err)
	}
	a, release, err := b.Answerer(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	items := make([]data.Item, len(ex))
	for i, e := range ex {
		items[i] = e.Item
	}
	res, err := eval.Evaluate(ctx, a, items, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Overall.Accuracy < 0.99 {
		t.Errorf("training accuracy %.2f after SFT, want 1", res.Summary.Overall.Accuracy)
	}
}

// TestRewardLearnsLevels trains the reward model on graded samples and
// checks originals then score above irrelevant samples.
func TestRewardLearnsLevels(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	ex := realExamples(t, 8)
	base := setup(t, b, pipeline.RoleReward, ex)
	g := pipeline.GradeSamples(ex, 1)
	out := filepath.Join(t.TempDir(), "rm")
	if _, err := b.TrainReward(ctx, base, out, g, pipeline.TrainOptions{Epochs: 40, BatchSize: 16, LearningRate: 5e-3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	var ex2 []pipeline.Example
	for _, x := range g {
		ex2 = append(ex2, x.Example)
	}
	scores, err := b.Score(ctx, out, ex2)
	if err != nil {
		t.Fatal(err)
	}
	mean := map[float64][]float64{}
	for i, x := range g {
		mean[x.Level] = append(mean[x.Level], scores[i])
	}
	avg := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	t.Logf("mean score by level: 10→%.2f 6→%.2f 0→%.2f −6→%.2f", avg(mean[10]), avg(mean[6]), avg(mean[0]), avg(mean[-6]))
	// Incoherent and irrelevant samples differ from originals in their
	// text; perturbed ones only in the image-answer fit, which eight
	// images do not teach, so they are not checked here.
	if !(avg(mean[10]) > avg(mean[0])+2 && avg(mean[10]) > avg(mean[-6])+2) {
		t.Errorf("originals do not score above incoherent and irrelevant samples")
	}
}

func TestGenerateAndGRPO(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	ex := realExamples(t, 4)
	gen := setup(t, b, pipeline.RoleGenerator, ex)
	reqs := []pipeline.GenRequest{{Image: ex[0].Item.ImagePath, Modality: "X-Ray", Dataset: "PneumoniaMNIST", QuestionID: "g0"}}
	out, err := b.Generate(ctx, gen, reqs, pipeline.SampleOptions{Temperature: 1, MaxNewTokens: 16, Seed: 1})
	if err != nil || len(out) != 1 || out[0].Text == "" {
		t.Fatalf("generate: %v %+v", err, out)
	}
	tok := filepath.Join(filepath.Dir(gen), "tokenizer.json")
	pol, rm := filepath.Join(t.TempDir(), "p"), filepath.Join(t.TempDir(), "r")
	if err := b.NewBundle(ctx, pol, pipeline.RoleVQA, tok, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.NewBundle(ctx, rm, pipeline.RoleReward, tok, 3); err != nil {
		t.Fatal(err)
	}
	items := []data.Item{ex[0].Item, ex[1].Item, ex[2].Item}
	o := pipeline.GRPOOptions{TrainOptions: pipeline.TrainOptions{Epochs: 2, BatchSize: 8, LearningRate: 1e-3, Seed: 1},
		Group: 4, RewardWeight: 0.8, MatchWeight: 0.2, Temperature: 1}
	st, err := b.GRPO(ctx, pol, filepath.Join(t.TempDir(), "out"), rm, items, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Steps < 2 || len(st.Series["reward"]) != 2 {
		t.Errorf("GRPO stats %+v", st)
	}
	capped := o
	capped.MaxSteps = 1
	if st, err := b.GRPO(ctx, pol, filepath.Join(t.TempDir(), "capped"), rm, items, capped); err != nil || st.Steps != 1 {
		t.Errorf("GRPO with max_steps 1: %d steps, %v", st.Steps, err)
	}
	bad := []struct {
		name  string
		items []data.Item
		mod   func(*pipeline.GRPOOptions)
		want  error
	}{
		{"no items", nil, func(*pipeline.GRPOOptions) {}, pipeline.ErrData},
		{"group 1", items, func(o *pipeline.GRPOOptions) { o.Group = 1 }, pipeline.ErrData},
		{"kl", items, func(o *pipeline.GRPOOptions) { o.KLBeta = 0.1 }, pipeline.ErrConfig},
	}
	for _, c := range bad {
		o2 := o
		c.mod(&o2)
		if _, err := b.GRPO(ctx, pol, filepath.Join(t.TempDir(), "x"), rm, c.items, o2); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	ex := realExamples(t, 2)
	bundle := setup(t, b, pipeline.RoleVQA, ex)
	tok := filepath.Join(filepath.Dir(bundle), "tokenizer.json")
	if err := b.NewBundle(ctx, t.TempDir(), pipeline.Role("judge"), tok, 1); !errors.Is(err, pipeline.ErrConfig) {
		t.Errorf("bad role: %v", err)
	}
	if _, err := b.SFT(ctx, bundle, t.TempDir(), pipeline.RoleVQA, nil, pipeline.TrainOptions{Epochs: 1, BatchSize: 1, LearningRate: 1e-3}); !errors.Is(err, pipeline.ErrData) {
		t.Errorf("no examples: %v", err)
	}
	missing := ex[0]
	missing.Item.ImagePath = filepath.Join(t.TempDir(), "nope.png")
	if _, err := b.SFT(ctx, bundle, filepath.Join(t.TempDir(), "o"), pipeline.RoleVQA, []pipeline.Example{missing},
		pipeline.TrainOptions{Epochs: 1, BatchSize: 1, LearningRate: 1e-3}); !errors.Is(err, pipeline.ErrData) {
		t.Errorf("missing image: %v", err)
	}
	if _, err := b.Score(ctx, filepath.Join(t.TempDir(), "none"), ex); err == nil {
		t.Error("score with a missing bundle: no error")
	}
	if _, _, err := b.Answerer(ctx, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("answerer with a missing bundle: no error")
	}
	if _, err := New(ctx, Options{LibraryPath: "/nonexistent/libonnxruntime.so"}); err == nil {
		t.Error("bad library path: no error")
	} else {
		var le *runtime.LibraryError
		if !errors.As(err, &le) && !errors.Is(err, runtime.ErrEnvConflict) {
			t.Logf("bad library path: %v", err)
		}
	}
}

// TestNewBundleMaxPixels: with Options.MaxPixels a new bundle resizes
// any image to at most that many pixels (its preprocessor_config.json says
// so), as the pipeline's bundles train on images of that size; without
// it, Qwen2-VL's default keeps a 224-pixel image whole.
func TestNewBundleMaxPixels(t *testing.T) {
	ctx := context.Background()
	ex := realExamples(t, 2)
	img, _, err := preprocessing.DecodeFile(shared+"/omnimedvqa-real/images/knee/val/3/9246518R.png", preprocessing.Limits{})
	if err != nil {
		t.Fatalf("shared test data: %v", err)
	}
	for _, c := range []struct {
		pixels, wantTokens int
	}{{0, 64}, {56 * 56, 4}} {
		b, err := New(ctx, Options{LibraryPath: os.Getenv("MEDGR2_ORT_LIB"), Arch: tinyArch, Threads: 1, MaxPixels: c.pixels})
		if err != nil {
			t.Fatal(err)
		}
		dir := setup(t, b, pipeline.RoleVQA, ex)
		v, err := b.open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		px, err := v.ProcessImage(img)
		if err == nil && px.ImageTokens() != c.wantTokens {
			err = fmt.Errorf("%d image tokens, want %d", px.ImageTokens(), c.wantTokens)
		}
		if cerr := errors.Join(v.Close(), b.Close()); err == nil {
			err = cerr
		}
		if err != nil {
			t.Errorf("image_pixels %d: %v", c.pixels, err)
		}
		js, _ := os.ReadFile(filepath.Join(dir, "preprocessor_config.json"))
		if c.pixels > 0 && !strings.Contains(string(js), fmt.Sprintf(`"max_pixels": %d`, c.pixels)) {
			t.Errorf("preprocessor_config.json lacks max_pixels %d:\n%s", c.pixels, js)
		}
	}
}
