package pipeline

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
)

func item(id, img, mod, q string, opts []string, gold int) data.Item {
	it := data.Item{QuestionID: id, ImagePath: img, ModalityType: mod, Question: q, Dataset: "D"}
	_ = it.SetOptions(opts)
	it.GTAnswer = opts[gold]
	return it
}

func cand(q string, score float64, parsed bool) Candidate {
	c := Candidate{Score: score}
	c.Item = item("x", "/i.png", "CT", q, []string{"a", "b"}, 0)
	if !parsed {
		c.Err = "no Question:"
	}
	return c
}

func TestFilter(t *testing.T) {
	tau := func(v float64) *float64 { return &v }
	tests := []struct {
		name     string
		cands    []Candidate
		cfg      FilterConfig
		accepted []bool
		dropped  int
	}{
		{"threshold", []Candidate{cand("q1", 9, true), cand("q2", 4, true), cand("q3", 5, true)},
			FilterConfig{Threshold: tau(5), MaxTemplateShare: 1}, []bool{true, false, true}, 0},
		{"unparsed never accepted", []Candidate{cand("q1", 9, false), cand("q2", 9, true)},
			FilterConfig{Threshold: tau(0), MaxTemplateShare: 1}, []bool{false, true}, 0},
		{"top-k", []Candidate{cand("q1", 1, true), cand("q2", 3, true), cand("q3", 2, true)},
			FilterConfig{TopK: 2, MaxTemplateShare: 1}, []bool{false, true, true}, 0},
		{"top fraction", []Candidate{cand("q1", 1, true), cand("q2", 3, true), cand("q3", 2, true), cand("q4", 0, false)},
			FilterConfig{TopFraction: 0.5, MaxTemplateShare: 1}, []bool{false, true, true, false}, 0},
		{"template share", []Candidate{cand("same 1", 9, true), cand("same 2", 8, true), cand("same 3", 7, true), cand("other", 6, true)},
			FilterConfig{Threshold: tau(5), MaxTemplateShare: 0.5}, []bool{true, true, false, true}, 1},
		{"one template always allowed", []Candidate{cand("q", 9, true), cand("q", 9, true)},
			FilterConfig{Threshold: tau(5), MaxTemplateShare: 0.1}, []bool{true, false}, 1},
		{"NaN score rejected", []Candidate{cand("q", math.NaN(), true)},
			FilterConfig{Threshold: tau(-100), MaxTemplateShare: 1}, []bool{false}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Filter(tt.cands, tt.cfg)
			for i, c := range tt.cands {
				if c.Accepted != tt.accepted[i] {
					t.Errorf("candidate %d accepted %v, want %v", i, c.Accepted, tt.accepted[i])
				}
			}
			if res.DroppedByShare != tt.dropped {
				t.Errorf("dropped %d, want %d", res.DroppedByShare, tt.dropped)
			}
		})
	}
}

// TestAcceptedExamplesVerify checks which accepted samples a round
// retrains on: with "coherent" the incoherent accepted sample becomes an
// incoherent hard negative; with "none" every accepted sample is kept.
func TestAcceptedExamplesVerify(t *testing.T) {
	good := cand("Which organ?", 9, true)
	good.Accepted, good.Coherent, good.Reasoning = true, true, "It shows a."
	bad := cand("Which lobe?", 8, true)
	bad.Accepted, bad.Reasoning = true, "It shows b."
	rejected := cand("Which side?", 1, true)
	junk := cand("", 0, false)
	junk.Text = "garbage"
	cands := []Candidate{good, bad, rejected, junk}
	cases := []struct {
		verify    string
		verified  []string // questions kept
		negatives []string // kinds of the hard negatives
	}{
		{VerifyCoherent, []string{"Which organ?"}, []string{"unverified", "unparsed"}},
		{VerifyNone, []string{"Which organ?", "Which lobe?"}, []string{"unparsed"}},
	}
	for _, c := range cases {
		t.Run(c.verify, func(t *testing.T) {
			ver, neg := acceptedExamples(cands, c.verify)
			var qs, kinds []string
			for _, e := range ver {
				qs = append(qs, e.Item.Question)
			}
			for _, g := range neg {
				kinds = append(kinds, g.Kind)
				if g.Level != LevelIncoherent {
					t.Errorf("%s negative at level %g", g.Kind, g.Level)
				}
			}
			if !slices.Equal(qs, c.verified) || !slices.Equal(kinds, c.negatives) {
				t.Errorf("verified %q, negatives %q; want %q, %q", qs, kinds, c.verified, c.negatives)
			}
		})
	}
}

func TestGradeSamples(t *testing.T) {
	good := []Example{
		{Item: item("1", "/a.png", "CT", "Which organ?", []string{"liver", "lung", "brain", "heart"}, 1)},
		{Item: item("2", "/b.png", "MRI", "Which sequence?", []string{"T1", "T2", "FLAIR"}, 0)},
		{Item: item("3", "/c.png", "CT", "Any lesion?", []string{"yes", "no"}, 1)},
	}
	for i := range good {
		good[i].Reasoning = Reasoning(good[i].Item)
	}
	g := GradeSamples(good, 1)
	kinds := map[string]int{}
	for _, x := range g {
		kinds[x.Kind]++
		if err := x.Item.Validate(); err != nil {
			t.Errorf("%s: invalid item: %v", x.Kind, err)
		}
		want := map[string]float64{"original": 10, "wrong_letter": 6, "swapped_option": 6, "altered_finding": 6,
			"contradiction": 0, "shuffled_text": 0, "other_image": -6}[x.Kind]
		if x.Level != want {
			t.Errorf("%s at level %g, want %g", x.Kind, x.Level, want)
		}
	}
	for _, k := range []string{"original", "wrong_letter", "swapped_option", "altered_finding", "contradiction", "shuffled_text", "other_image"} {
		if kinds[k] != len(good) {
			t.Errorf("%d %s samples for %d originals (%v)", kinds[k], k, len(good), kinds)
		}
	}
	for _, x := range g {
		orig := good[0]
		if x.Kind != "wrong_letter" || x.Item.QuestionID != orig.Item.QuestionID {
			continue
		}
		if x.Item.GTAnswer == orig.Item.GTAnswer {
			t.Error("wrong_letter kept the answer")
		}
	}
	for _, x := range g {
		if x.Kind == "other_image" {
			for _, e := range good {
				if e.Item.QuestionID == x.Item.QuestionID && e.Item.ImagePath == x.Item.ImagePath {
					t.Errorf("irrelevant sample %s kept its own image", x.Item.QuestionID)
				}
			}
		}
	}
	// The variants of one item share its group (images are distinct per item here).
	groupOf := map[string]string{}
	for _, x := range g {
		if x.Kind == "original" {
			groupOf[x.Group] = x.Item.ImagePath
		}
	}
	for _, x := range g {
		if img, ok := groupOf[x.Group]; !ok || x.Group == "" || img != x.Item.ImagePath {
			t.Errorf("%s sample %s in group %q (image %s), want its item's group", x.Kind, x.Item.QuestionID, x.Group, x.Item.ImagePath)
		}
	}
	if len(groupOf) != len(good) {
		t.Errorf("%d groups for %d items", len(groupOf), len(good))
	}
	if len(GradeSamples(good[:1], 1)) != 6 { // original, 3 perturbed, 2 incoherent: no other image
		t.Errorf("single example: %d graded", len(GradeSamples(good[:1], 1)))
	}
}

func TestSplitSeed(t *testing.T) {
	var train []data.Item
	for i := range 40 {
		mod := "CT"
		if i%10 == 0 {
			mod = "MRI" // four MRI images
		}
		img := "/img" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".png"
		train = append(train, item("q"+img, img, mod, "q?", []string{"a", "b"}, 0), item("r"+img, img, mod, "r?", []string{"c", "d"}, 1))
	}
	seed, pool, err := SplitSeed(train, 0.05, 3)
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]bool{}
	for _, it := range seed {
		mods[it.ModalityType] = true
	}
	if !mods["CT"] || !mods["MRI"] {
		t.Errorf("seed set modalities %v, want both", mods)
	}
	if n := len(groupByImage(seed)); n+len(pool) != 40 || n < 2 {
		t.Errorf("seed images %d + pool %d != 40", n, len(pool))
	}
	seed2, _, _ := SplitSeed(train, 0.05, 3)
	if len(seed2) != len(seed) || seed2[0].QuestionID != seed[0].QuestionID {
		t.Error("not deterministic")
	}
	bad := []struct {
		name  string
		items []data.Item
		frac  float64
		want  error
	}{
		{"fraction 0", train, 0, ErrConfig},
		{"fraction > 1", train, 1.5, ErrConfig},
		{"one image", train[:2], 0.5, ErrData},
	}
	for _, b := range bad {
		if _, _, err := SplitSeed(b.items, b.frac, 1); !errors.Is(err, b.want) {
			t.Errorf("%s: err %v, want %v", b.name, err, b.want)
		}
	}
}

func TestTruth(t *testing.T) {
	items := []data.Item{
		item("1", "/a.png", "CT", "Which organ?", []string{"liver", "lung"}, 0),
		item("2", "/a.png", "CT", "Which modality?", []string{"CT", "MRI"}, 0),
	}
	tr := NewTruth(items)
	tests := []struct {
		it   data.Item
		want bool
	}{
		{item("g", "/a.png", "CT", "What organ is this?", []string{"kidney", "Liver"}, 1), true}, // normalised match
		{item("g", "/a.png", "CT", "Modality?", []string{"CT", "X-ray"}, 0), true},
		{item("g", "/a.png", "CT", "Organ?", []string{"liver", "lung"}, 1), false},
		{item("g", "/b.png", "CT", "Organ?", []string{"liver", "lung"}, 0), false}, // unknown image
	}
	for i, tt := range tests {
		if got := tr.Correct(tt.it); got != tt.want {
			t.Errorf("case %d: Correct = %v, want %v", i, got, tt.want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"data": {"collections": ["col"], "reference": "ref.json"}, "out_dir": "out"}`
	c, err := LoadConfig(write(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Data.Collections[0] != filepath.Join(dir, "col") || c.OutDir != filepath.Join(dir, "out") {
		t.Errorf("paths not resolved: %+v", c.Data)
	}
	if c.Rounds != 3 || c.SeedFraction != 0.05 || *c.Filter.Threshold != 5 || c.GRPO.RewardWeight != 0.8 || c.GRPO.MatchWeight != 0.2 {
		t.Errorf("defaults not applied: %+v", c)
	}
	bad := []struct{ name, body string }{
		{"not json", `{`},
		{"unknown field", `{"data": {"collections": ["c"], "reference": "r"}, "roundz": 3}`},
		{"no collections", `{"data": {"reference": "r"}}`},
		{"no reference", `{"data": {"collections": ["c"]}}`},
		{"seed fraction", `{"data": {"collections": ["c"], "reference": "r"}, "seed_fraction": 2}`},
		{"rounds", `{"data": {"collections": ["c"], "reference": "r"}, "rounds": -1}`},
		{"group", `{"data": {"collections": ["c"], "reference": "r"}, "grpo": {"group": 1}}`},
		{"weights", `{"data": {"collections": ["c"], "reference": "r"}, "grpo": {"reward_weight": -1}}`},
		{"share", `{"data": {"collections": ["c"], "reference": "r"}, "filter": {"max_template_share": 2}}`},
		{"repeated seed", `{"data": {"collections": ["c"], "reference": "r"}, "seeds": [1, 1]}`},
		{"model size", `{"data": {"collections": ["c"], "reference": "r"}, "model": {"hidden_size": 30}}`},
		{"train", `{"data": {"collections": ["c"], "reference": "r"}, "policy_sft": {"learning_rate": -1}}`},
		{"pretrain limit", `{"data": {"collections": ["c"], "reference": "r"}, "pretrain": {"items": "p.json", "limit": -1}}`},
		{"pretrain train", `{"data": {"collections": ["c"], "reference": "r"}, "pretrain": {"vqa": {"batch_size": -1}}}`},
		{"option shuffles", `{"data": {"collections": ["c"], "reference": "r"}, "policy_sft": {"option_shuffles": -1}}`},
		{"max pixels", `{"data": {"collections": ["c"], "reference": "r"}, "model": {"max_pixels": -1}}`},
		{"max steps", `{"data": {"collections": ["c"], "reference": "r"}, "grpo": {"max_steps": -1}}`},
		{"generator shuffles", `{"data": {"collections": ["c"], "reference": "r"}, "generator_sft": {"option_shuffles": -2}}`},
		{"answer weight", `{"data": {"collections": ["c"], "reference": "r"}, "round_generator_sft": {"answer_weight": -1}}`},
		{"verify", `{"data": {"collections": ["c"], "reference": "r"}, "verify": "oracle"}`},
		{"synthesis", `{"data": {"collections": ["c"], "reference": "r"}, "synthesis": {"per_image": -1}}`},
		{"answer temperature", `{"data": {"collections": ["c"], "reference": "r"}, "generate": {"answer_temperature": -0.5}}`},
	}
	for _, b := range bad {
		if _, err := LoadConfig(write(b.body)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", b.name, err)
		}
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.json")); !errors.Is(err, ErrConfig) {
		t.Errorf("missing file: %v", err)
	}
}

func TestQuickAndArch(t *testing.T) {
	c := Config{OutDir: "o", Seeds: []uint64{1, 2, 3}, Rounds: 3}
	c.Quick()
	if c.OutDir != "o-quick" || len(c.Seeds) != 1 || c.Rounds != 2 || c.Generate.PoolLimit == 0 {
		t.Errorf("quick: %+v", c)
	}
	for _, m := range []ModelConfig{{}, {HiddenSize: 64, IntermediateSize: 192, Layers: 3, VisionWidth: 48, VisionDepth: 1}, {HiddenSize: 256}} {
		if err := m.Arch(500).Validate(); err != nil {
			t.Errorf("%+v: %v", m, err)
		}
	}
}

func TestSampleText(t *testing.T) {
	ex := Example{Item: item("1", "", "CT", "Which organ?", []string{"liver", "lung", "brain"}, 2), Reasoning: "It is the brain."}
	want := "Question: Which organ?\nA. liver\nB. lung\nC. brain\n<think>It is the brain.</think><answer>C</answer>"
	if got := SampleText(ex); got != want {
		t.Errorf("got %q", got)
	}
	if !strings.Contains(Reasoning(ex.Item), "brain") {
		t.Errorf("reasoning %q does not name the answer", Reasoning(ex.Item))
	}
}
