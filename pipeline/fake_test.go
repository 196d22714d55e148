package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
	"github.com/medgr2/medgr2/data/eval"
)

// fakeBackend stands in for the models: bundles are folders with a JSON
// marker, the generator writes modality questions that are right two
// times in three (it peeks at the built benchmark, as a trained generator
// would know), the reward model scores right answers high, and the
// answerer guesses.
type fakeBackend struct {
	out string // the run's OutDir, to find the benchmark

	mu    sync.Mutex
	calls map[string]int // method → calls
	// failAt makes the named method fail on its n-th call (1-based).
	failAt map[string]int
	truth  map[string]data.Item // image → its modality question
	// sampled holds the options of every Generate call.
	sampled []SampleOptions
	// lastGenerator is the bundle of the latest Generate call.
	lastGenerator string
	// groundedSFT counts the image-grounding examples of SFT calls, by
	// output bundle.
	groundedSFT map[string]int
}

var errInjected = errors.New("fake: injected failure")

func newFake(out string) *fakeBackend {
	return &fakeBackend{out: out, calls: map[string]int{}, failAt: map[string]int{}}
}

func (f *fakeBackend) call(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[name]++
	if n, ok := f.failAt[name]; ok && f.calls[name] == n {
		return fmt.Errorf("%s: %w", name, errInjected)
	}
	return nil
}

type marker struct {
	Role    Role   `json:"role"`
	Seed    uint64 `json:"seed"`
	Trained int    `json:"trained"`
	// Vision counts the vision pretraining runs behind the bundle's
	// encoder; VisionImages is how many images the last one saw.
	Vision       int      `json:"vision,omitempty"`
	VisionImages []string `json:"vision_images,omitempty"`
}

func writeMarker(dir string, m marker) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, _ := json.Marshal(m)
	return os.WriteFile(filepath.Join(dir, "fake.json"), raw, 0o644)
}

func readMarker(dir string) (marker, error) {
	var m marker
	raw, err := os.ReadFile(filepath.Join(dir, "fake.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(raw, &m)
}

func (f *fakeBackend) Tokenizer(_ context.Context, path string, corpus []string, _ int) error {
	if err := f.call("Tokenizer"); err != nil {
		return err
	}
	if len(corpus) == 0 {
		return errors.New("fake: empty corpus")
	}
	return os.WriteFile(path, []byte(fmt.Sprint(len(corpus))), 0o644)
}

func (f *fakeBackend) NewBundle(_ context.Context, dir string, role Role, tok string, seed uint64) error {
	if err := f.call("NewBundle"); err != nil {
		return err
	}
	if _, err := os.Stat(tok); err != nil {
		return err
	}
	return writeMarker(dir, marker{Role: role, Seed: seed})
}

func (f *fakeBackend) train(name, base, out string, n int) (TrainStats, error) {
	if err := f.call(name); err != nil {
		return TrainStats{}, err
	}
	m, err := readMarker(base)
	if err != nil {
		return TrainStats{}, err
	}
	if n == 0 {
		return TrainStats{}, errors.New("fake: no examples")
	}
	m.Trained++
	if err := writeMarker(out, m); err != nil {
		return TrainStats{}, err
	}
	return TrainStats{Steps: 3, Curve: []float64{3, 2, 1}, Metrics: map[string]float64{"loss": 1}}, nil
}

func (f *fakeBackend) SFT(_ context.Context, base, out string, _ Role, ex []Example, _ TrainOptions) (TrainStats, error) {
	grounded := 0
	for _, e := range ex {
		if strings.HasPrefix(e.Item.QuestionID, GroundingPrefix) {
			grounded++
		}
	}
	f.mu.Lock()
	if f.groundedSFT == nil {
		f.groundedSFT = map[string]int{}
	}
	f.groundedSFT[out] = grounded
	f.mu.Unlock()
	return f.train("SFT", base, out, len(ex))
}

func (f *fakeBackend) TrainReward(_ context.Context, base, out string, ex []Graded, _ TrainOptions) (TrainStats, error) {
	return f.train("TrainReward", base, out, len(ex))
}

func (f *fakeBackend) GRPO(_ context.Context, base, out, reward string, items []data.Item, _ GRPOOptions) (TrainStats, error) {
	if _, err := readMarker(reward); err != nil {
		return TrainStats{}, err
	}
	return f.train("GRPO", base, out, len(items))
}

func (f *fakeBackend) PretrainVision(_ context.Context, base, out string, images []string, _ VisionOptions) (TrainStats, error) {
	if err := f.call("PretrainVision"); err != nil {
		return TrainStats{}, err
	}
	m, err := readMarker(base)
	if err != nil {
		return TrainStats{}, err
	}
	if len(images) == 0 {
		return TrainStats{}, errors.New("fake: no images")
	}
	m.Vision++
	m.VisionImages = images
	if err := writeMarker(out, m); err != nil {
		return TrainStats{}, err
	}
	return TrainStats{Steps: 2, Curve: []float64{4, 3}, Metrics: map[string]float64{"loss": 3}}, nil
}

func (f *fakeBackend) WithVision(_ context.Context, base, vision, out string) error {
	if err := f.call("WithVision"); err != nil {
		return err
	}
	m, err := readMarker(base)
	if err != nil {
		return err
	}
	v, err := readMarker(vision)
	if err != nil {
		return err
	}
	m.Vision, m.VisionImages = v.Vision, v.VisionImages
	return writeMarker(out, m)
}

// Probe scores 0.5 on a random encoder, 0.7 after vision pretraining and
// 0.05 more per training call on top.
func (f *fakeBackend) Probe(_ context.Context, bundle string, collections []string, opts ProbeOptions) ([]ProbeResult, error) {
	if err := f.call("Probe"); err != nil {
		return nil, err
	}
	m, err := readMarker(bundle)
	if err != nil {
		return nil, err
	}
	acc := 0.5
	if m.Vision > 0 {
		acc = 0.7
	}
	acc += 0.05 * float64(m.Trained)
	var out []ProbeResult
	for _, c := range collections {
		out = append(out, ProbeResult{Collection: filepath.Base(c), Task: "label", Classes: 2, Train: opts.Limit, Val: opts.Limit,
			Majority: 0.5, RawPixels: 0.6, Features: acc})
	}
	return out, nil
}

func (f *fakeBackend) loadTruth() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.truth != nil {
		return nil
	}
	items, err := data.Load(filepath.Join(f.out, "stages", StageData, builder.FileAll))
	if err != nil {
		return err
	}
	f.truth = map[string]data.Item{}
	for _, it := range absolute(items) {
		if it.QuestionType == builder.TypeModality {
			f.truth[it.ImagePath] = it
		}
	}
	return nil
}

func hash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func (f *fakeBackend) Generate(_ context.Context, bundle string, reqs []GenRequest, o SampleOptions) ([]Generated, error) {
	if err := f.call("Generate"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.sampled = append(f.sampled, o)
	f.lastGenerator = bundle
	f.mu.Unlock()
	if _, err := readMarker(bundle); err != nil {
		return nil, err
	}
	if err := f.loadTruth(); err != nil {
		return nil, err
	}
	out := make([]Generated, len(reqs))
	for i, r := range reqs {
		h := hash(r.QuestionID)
		it, ok := f.truth[r.Image]
		if !ok || h%7 == 0 {
			out[i] = Generated{Text: "garbage", Err: "no \"Question:\""}
			continue
		}
		if h%3 == 0 { // a wrong answer: the first distractor
			for _, o := range it.Options() {
				if o != it.GTAnswer {
					it.GTAnswer = o
					break
				}
			}
		}
		if opts := it.Options(); h%5 == 1 { // a repeated option, as small generators write
			rep := " " + strings.ToUpper(opts[0])
			if len(opts) < data.MaxOptions {
				opts = append(opts, rep)
			} else if j := len(opts) - 1; opts[j] != it.GTAnswer {
				opts[j] = rep
			}
			_ = it.SetOptions(opts)
		}
		out[i] = Generated{Item: it, Reasoning: "It shows " + it.GTAnswer + "."}
		out[i].Text = SampleText(Example{Item: it, Reasoning: out[i].Reasoning})
	}
	return out, nil
}

func (f *fakeBackend) Score(_ context.Context, bundle string, ex []Example) ([]float64, error) {
	if err := f.call("Score"); err != nil {
		return nil, err
	}
	if err := f.loadTruth(); err != nil {
		return nil, err
	}
	out := make([]float64, len(ex))
	for i, e := range ex {
		out[i] = 2
		if t, ok := f.truth[e.Item.ImageFile()]; ok && t.GTAnswer == e.Item.GTAnswer {
			out[i] = 8 + float64(hash(e.Item.QuestionID)%3)
		}
	}
	return out, nil
}

func (f *fakeBackend) Answerer(_ context.Context, bundle string) (eval.Answerer, func() error, error) {
	if err := f.call("Answerer"); err != nil {
		return nil, nil, err
	}
	m, err := readMarker(bundle)
	if err != nil {
		return nil, nil, err
	}
	return eval.Random{Seed: m.Seed + uint64(m.Trained)}, func() error { return nil }, nil
}
