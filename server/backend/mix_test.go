package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/backend"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/model"
)

// realVQA is the OmniMedVQA file of real items (knee X-rays, sperm
// microscopy) in ../shared/data.
const realVQA = "../../../shared/data/omnimedvqa-real/omnimedvqa_real.json"

// mixRequest is one request of the serving mix: raw image bytes and a
// question with its options.
type mixRequest struct {
	image    []byte
	question string
	options  []string
}

// realMix returns n requests mixed as real traffic is: real OmniMedVQA
// items (knee X-ray 224² and sperm microscopy), PneumoniaMNIST 28² X-rays,
// BUSI ultrasound (about 500²) and BCCD 640×480 blood smears, with prompts
// from one short line to a long clinical context, in a fixed interleaving.
func realMix(t testing.TB, n int) []mixRequest {
	t.Helper()
	items, err := data.Load(realVQA)
	if err != nil {
		t.Fatalf("real items: %v", err)
	}
	var knee, sperm []data.Item
	for _, it := range items {
		if strings.HasPrefix(it.QuestionID, "knee") {
			knee = append(knee, it)
		} else {
			sperm = append(sperm, it)
		}
	}
	glob := func(pattern string) []string {
		m, err := filepath.Glob("../../../shared/data/" + pattern)
		if err != nil || len(m) == 0 {
			t.Fatalf("test data missing (%s): %v", pattern, err)
		}
		return m
	}
	xrays, busi, bccd := glob("pneumoniamnist/test/*.png"), glob("busi/images/benign_*.png"), glob("bccd/images/*.jpg")
	context := strings.Repeat("The patient presented with symptoms reported by the referring clinician; prior imaging was unremarkable. ", 12)
	out := make([]mixRequest, 0, n)
	for i := 0; len(out) < n; i++ {
		switch i % 5 {
		case 0, 1:
			it := knee[i%len(knee)]
			if i%5 == 1 {
				it = sperm[i%len(sperm)]
			}
			out = append(out, mixRequest{readFile(t, filepath.Join(filepath.Dir(realVQA), it.ImagePath)), it.Question, it.Options()})
		case 2:
			out = append(out, mixRequest{readFile(t, xrays[i%len(xrays)]),
				"Is there pneumonia?", []string{"yes", "no"}})
		case 3:
			out = append(out, mixRequest{readFile(t, busi[i%len(busi)]),
				context + "What does this breast ultrasound show?", []string{"a benign lesion", "a malignant lesion", "normal tissue"}})
		case 4:
			out = append(out, mixRequest{readFile(t, bccd[i%len(bccd)]),
				context[:len(context)/3] + "How many white blood cells are visible in this smear?", []string{"none", "one", "two", "three or more"}})
		}
	}
	return out
}

// inputs decodes the mix through dec, as the server does in each request's
// goroutine.
func inputs(t testing.TB, dec server.DecodeFunc, mix []mixRequest) []model.VQAInput {
	t.Helper()
	in := make([]model.VQAInput, len(mix))
	for i, r := range mix {
		img, err := dec(r.image)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		in[i] = model.VQAInput{Image: img, Question: r.question, Options: r.options}
	}
	return in
}

// submitAll submits every input at once to a batcher over m's VQA adapter
// with the given workers and returns the outputs in input order.
func submitAll(t testing.TB, m *backend.Models, workers int, in []model.VQAInput) []model.VQAOutput {
	t.Helper()
	b := batch.New(batch.Config{Name: "vqa", MaxBatch: 8, Workers: workers, QueueSize: len(in)}, m.VQA.AnswerBatch)
	defer b.Close(context.Background())
	out := make([]model.VQAOutput, len(in))
	errs := make([]error, len(in))
	var wg sync.WaitGroup
	for i, x := range in {
		wg.Go(func() { out[i], _, errs[i] = b.Submit(context.Background(), x, 0) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// TestWorkersAnswerAsModels answers a real mix through the batcher with
// one and with several workers (batches of up to 8, mixed prompt lengths
// and images, run concurrently on one session) and checks every answer
// is models.VLM.Answer's for that request alone: same letter,
// probabilities within 1e-5.
func TestWorkersAnswerAsModels(t *testing.T) {
	m := open(t, backend.Options{VQA: bundles.vqa, Workers: 3})
	in := inputs(t, m.DecodeImage(nil), realMix(t, 20))
	ctx := context.Background()
	want := make([]models.VQAAnswer, len(in))
	for i, x := range in {
		a, err := m.VQA.VLM().Answer(ctx, []models.VQARequest{{Pixels: x.Image.Pixels, Question: x.Question, Options: x.Options, Mode: models.ModeFast}}, models.ReasonOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = a[0]
	}
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			got := submitAll(t, m, workers, in)
			for i, g := range got {
				if g.Answer != want[i].Index {
					t.Errorf("request %d: answer %d through the batcher, %d from models", i, g.Answer, want[i].Index)
				}
				for k, p := range want[i].Probs {
					if d := math.Abs(g.Probs[k] - p); d > 1e-5 {
						t.Errorf("request %d option %d: P = %v through the batcher, %v from models (|Δ| %.2g)", i, k, g.Probs[k], p, d)
					}
				}
			}
		})
	}
}

// TestPromptTokens checks the VQA adapter counts a request's prompt the
// same from its processed pixels and from its decoded image alone, and
// that an unprocessable request is the request's error.
func TestPromptTokens(t *testing.T) {
	m := open(t, backend.Options{VQA: bundles.vqa})
	mix := realMix(t, 5)
	decodedOnly := inputs(t, server.PreprocessingDecoder(preprocessing.Limits{}), mix)
	for i, x := range inputs(t, m.DecodeImage(nil), mix) {
		want, err := m.VQA.VLM().PromptLength(models.VQARequest{Question: x.Question, Options: x.Options}, x.Image.Pixels.ImageTokens())
		if err != nil {
			t.Fatal(err)
		}
		ids, err := m.VQA.PromptIDs(x)
		if got := len(ids); err != nil || got != want {
			t.Errorf("request %d: PromptIDs gives %d, %v; want %d", i, got, err, want)
		}
		if dec, err := m.VQA.PromptIDs(decodedOnly[i]); err != nil || !slices.Equal(dec, ids) {
			t.Errorf("request %d, decoded image only: PromptIDs gives %d ids, %v; want the %d of the processed image", i, len(dec), err, want)
		}
	}
	var re *server.RequestError
	if _, err := m.VQA.PromptIDs(model.VQAInput{Question: "q", Options: []string{"one"}}); !errors.As(err, &re) {
		t.Errorf("one option: err %v, want a *server.RequestError", err)
	}
}

// TestWorkersSizeThreads checks Options.Workers sizes the sessions'
// intra-op threads to GOMAXPROCS/Workers (at least 1) when Threads is 0,
// and that an explicit Threads wins.
func TestWorkersSizeThreads(t *testing.T) {
	procs := goruntime.GOMAXPROCS(0)
	for _, tt := range []struct{ workers, threads, want int }{
		{2, 0, max(1, procs/2)},
		{4 * procs, 0, 1},
		{2, 3, 3},
	} {
		var logs bytes.Buffer
		o := backend.Options{VQA: bundles.vqa, Device: runtime.CPU, Workers: tt.workers, Threads: tt.threads, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		m, err := backend.Open(context.Background(), o) // not open: it sets Threads
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("intra_op_threads=%d", tt.want); !strings.Contains(logs.String(), want) {
			t.Errorf("workers %d threads %d: log %q lacks %s", tt.workers, tt.threads, logs.String(), want)
		}
	}
}

// TestDecodeImagePixelCache checks DecodeImage's pixel cache: the same
// bytes again return the cached Pixels without decoding, and answer as the
// first time; other bytes miss; bad bytes are an error every time; a
// negative PixelCacheBytes turns the cache off.
func TestDecodeImagePixelCache(t *testing.T) {
	m := open(t, backend.Options{VQA: bundles.vqa})
	dec := m.DecodeImage(nil)
	knee, xray := readFile(t, kneePNG), readFile(t, xrayPNG)
	first, err := dec(knee)
	if err != nil || first.DecodeTime == 0 || first.Decoded != nil || first.Pixels == nil {
		t.Fatalf("first decode: %+v, %v", first, err)
	}
	again, err := dec(knee)
	if err != nil || again.DecodeTime != 0 || again.Pixels != first.Pixels {
		t.Fatalf("second decode: decoded in %v, pixels %p (first %p), %v; want the cached pixels only", again.DecodeTime, again.Pixels, first.Pixels, err)
	}
	if other, err := dec(xray); err != nil || other.DecodeTime == 0 || other.Pixels == first.Pixels {
		t.Fatalf("other image: %+v, %v; want a fresh decode", other, err)
	}
	q := func(img model.Image) model.VQAInput {
		return model.VQAInput{Image: img, Question: "Which joint is shown?", Options: []string{"knee", "hip", "ankle"}}
	}
	out, err := m.VQA.AnswerBatch(context.Background(), []model.VQAInput{q(first), q(again)})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Answer != out[1].Answer || math.Abs(out[0].Probs[0]-out[1].Probs[0]) > 1e-6 {
		t.Errorf("cached pixels answer %+v, decoded %+v", out[1], out[0])
	}
	bad := []byte("not an image at all")
	for range 2 {
		if _, err := dec(bad); err == nil {
			t.Fatal("bad bytes decoded")
		}
	}
	off := open(t, backend.Options{VQA: bundles.vqa, PixelCacheBytes: -1}).DecodeImage(nil)
	for range 2 {
		if img, err := off(knee); err != nil || img.DecodeTime == 0 {
			t.Fatalf("cache off: decoded in %v, %v; want a decode every time", img.DecodeTime, err)
		}
	}
}
