package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/data"
)

// pretrainConfig is testConfig with a text-only base pretrained on the
// real OmniMedVQA questions.
func pretrainConfig(t *testing.T) *Config {
	t.Helper()
	c := testConfig(t)
	c.Seeds = []uint64{1}
	c.Pretrain.Items = shared + "/omnimedvqa-text/omnimedvqa_text_sample.json"
	c.Pretrain.Limit = 300
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPretrainStartsTheLoopFromTheBase(t *testing.T) {
	cfg := pretrainConfig(t)
	p := fakePipeline(t, cfg)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Trained counts the SFT calls a bundle went through: the base's one
	// plus the stage's own for the VQA policy and the generator; the
	// reward model starts from random weights.
	for _, tt := range []struct {
		dir     string
		role    Role
		trained int
	}{
		{filepath.Join(p.stageDir(StagePretrain), string(RoleVQA)), RoleVQA, 1},
		{filepath.Join(p.stageDir(StagePretrainGenerator), string(RoleGenerator)), RoleGenerator, 1},
		{filepath.Join(p.stageDir(seedStage(1, PolicySeed)), dirBundle), RoleVQA, 2},
		{filepath.Join(p.stageDir(roundStage(1, 0)), dirGenerator), RoleGenerator, 2},
		{filepath.Join(p.stageDir(roundStage(1, 0)), dirReward), RoleReward, 1},
	} {
		wantMarker(t, tt.dir, tt.role, tt.trained)
	}
	res, err := LoadResults(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := res.Table[PolicyBase][BenchTest]; !ok || c.N == 0 {
		t.Errorf("no %s row: %+v", PolicyBase, res.Table[PolicyBase])
	}
	// Changing the base reruns everything trained from it, not the data.
	cfg.Pretrain.VQA.Epochs++
	p2, _ := New(cfg, newFake(cfg.OutDir), Options{})
	if _, err := p2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(p2.Ran()) == 0 || p2.Ran()[0] != StagePretrain {
		t.Errorf("after a pretrain change ran %v, want it to start at %s", p2.Ran(), StagePretrain)
	}
}

func TestPretrainRewardBase(t *testing.T) {
	cfg := pretrainConfig(t)
	cfg.Pretrain.Reward = TrainOptions{Epochs: 1, BatchSize: 8, LearningRate: 1e-3}
	p := fakePipeline(t, cfg)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		dir     string
		trained int
	}{
		{filepath.Join(p.stageDir(StagePretrainReward), string(RoleReward)), 1},
		{filepath.Join(p.stageDir(roundStage(1, 0)), dirReward), 2},
		{filepath.Join(p.stageDir(roundStage(1, 1)), dirReward), 3},
	} {
		wantMarker(t, tt.dir, RoleReward, tt.trained)
	}
	var sum PretrainSummary
	if err := readJSON(filepath.Join(p.stageDir(StagePretrainReward), SummaryFile), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Reward == nil || sum.Reward.Steps == 0 {
		t.Errorf("pretrain summary has no reward training: %+v", sum.Reward)
	}
}

func TestTextGradedLeavesOutIrrelevant(t *testing.T) {
	cfg := pretrainConfig(t)
	p := fakePipeline(t, cfg)
	buildData(t, p)
	ex, _, err := p.pretrainItems()
	if err != nil {
		t.Fatal(err)
	}
	levels := map[float64]int{}
	for _, g := range textGraded(ex, 1) {
		levels[g.Level]++
	}
	if levels[LevelIrrelevant] != 0 || levels[LevelOriginal] != len(ex) || levels[LevelPerturbed] == 0 || levels[LevelIncoherent] == 0 {
		t.Errorf("levels %v from %d items: want every item's original, perturbed and incoherent, no irrelevant", levels, len(ex))
	}
}

func TestPretrainItemsKeepBenchmarksUnseen(t *testing.T) {
	cfg := pretrainConfig(t)
	cfg.Pretrain.Limit = 0
	p := fakePipeline(t, cfg)
	buildData(t, p)
	ex, dropped, err := p.pretrainItems()
	if err != nil {
		t.Fatal(err)
	}
	real, err := data.Load(cfg.Data.Real)
	if err != nil {
		t.Fatal(err)
	}
	realSets := map[string]bool{}
	for _, it := range real {
		realSets[it.Dataset] = true
	}
	for _, e := range ex {
		if e.Item.ModalityType == "X-Ray" || realSets[e.Item.Dataset] || e.Item.ImageFile() != "" || e.Reasoning == "" {
			t.Fatalf("pretraining item %s (%s, %s, image %q) should have been dropped or stripped",
				e.Item.QuestionID, e.Item.ModalityType, e.Item.Dataset, e.Item.ImageFile())
		}
	}
	if len(ex) < 1000 || dropped["held-out modality"] == 0 || dropped["real-benchmark dataset"] == 0 {
		t.Errorf("%d items kept, dropped %v", len(ex), dropped)
	}
	t.Logf("%d pretraining items, dropped %v", len(ex), dropped)
}

func TestPretrainBadItems(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, body string }{
		{"missing", ""},
		{"not json", "{"},
		{"no valid items", `[{"question_id": "q", "question": "?"}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pretrainConfig(t)
			cfg.Pretrain.Items = filepath.Join(dir, tt.name+".json")
			if tt.body != "" {
				if err := os.WriteFile(cfg.Pretrain.Items, []byte(tt.body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := New(cfg, newFake(cfg.OutDir), Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Run(context.Background())
			var se *StageError
			if !errors.Is(err, ErrData) || !errors.As(err, &se) || se.Stage != StagePretrain {
				t.Fatalf("err = %v, want ErrData from the %s stage", err, StagePretrain)
			}
		})
	}
}

// fakePipeline returns a pipeline for cfg on the fake backend.
func fakePipeline(t *testing.T, cfg *Config) *Pipeline {
	t.Helper()
	p, err := New(cfg, newFake(cfg.OutDir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// buildData runs p's data stage only.
func buildData(t *testing.T, p *Pipeline) {
	t.Helper()
	if _, err := p.runStage(context.Background(), p.plan()[0], p.stageDir(StageData)); err != nil {
		t.Fatal(err)
	}
}

// wantMarker checks that the fake bundle in dir has the role and went
// through trained training calls.
func wantMarker(t *testing.T, dir string, role Role, trained int) {
	t.Helper()
	m, err := readMarker(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Role != role || m.Trained != trained {
		t.Errorf("%s: %+v, want role %s trained %d times", dir, m, role, trained)
	}
}

func TestGroundingItems(t *testing.T) {
	item := func(id, dataset, qtype string) data.Item {
		return data.Item{QuestionID: id, Dataset: dataset, QuestionType: qtype, ImagePath: id + ".png", Root: "/r",
			Question: "q?", OptionA: "a", OptionB: "b", GTAnswer: "a"}
	}
	items := []data.Item{
		item("ct-1-mod", "ct", "Modality Recognition"), item("ct-1-anat", "ct", "Anatomy Identification"),
		item("us-1-mod", "us", "Modality Recognition"), item("us-1-anat", "us", "Anatomy Identification"),
		item("us-1-dx", "us", "Disease Diagnosis"), item("xx-1-mod", "xx", "Modality Recognition"),
	}
	cases := []struct {
		name     string
		metadata map[string][]string
		want     []string // question ids
	}{
		{"no manifest types", nil, nil},
		{"per dataset", map[string][]string{"ct": {"Modality Recognition"}, "us": {"Modality Recognition", "Anatomy Identification"}},
			[]string{"grounding-ct-1-mod", "grounding-us-1-mod", "grounding-us-1-anat"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(items)
			got := GroundingItems(in, c.metadata)
			var ids []string
			for _, g := range got {
				ids = append(ids, g.QuestionID)
				if g.Root != "/r" || g.GTAnswer != "a" {
					t.Errorf("%s: %+v lost a field", g.QuestionID, g)
				}
			}
			if !slices.Equal(ids, c.want) {
				t.Errorf("ids %q, want %q", ids, c.want)
			}
			for i := range in {
				if in[i].QuestionID != items[i].QuestionID {
					t.Errorf("GroundingItems changed its input: %s", in[i].QuestionID)
				}
			}
		})
	}
}

// TestPretrainGrounding checks that Grounding adds one grounding item
// per training image to the VQA base's data and none to the generator's.
func TestPretrainGrounding(t *testing.T) {
	cfg := pretrainConfig(t)
	cfg.Pretrain.Grounding = true
	be := newFake(cfg.OutDir)
	p, _ := runFake(t, cfg, be)
	var sum PretrainSummary
	if err := readJSON(filepath.Join(p.stageDir(StagePretrain), SummaryFile), &sum); err != nil {
		t.Fatal(err)
	}
	b, err := p.loadBenchmark()
	if err != nil {
		t.Fatal(err)
	}
	if want := len(GroundingItems(b.train, b.metadataTypes)); sum.Grounding != want || want == 0 {
		t.Errorf("grounding items %d, want the training items of metadata types (%d)", sum.Grounding, want)
	}
	vqa := be.groundedSFT[filepath.Join(p.stageDir(StagePretrain)+".partial", string(RoleVQA))]
	gen := be.groundedSFT[filepath.Join(p.stageDir(StagePretrainGenerator)+".partial", string(RoleGenerator))]
	if vqa != sum.Grounding || gen != 0 {
		t.Errorf("grounding examples: VQA base %d, generator base %d; want %d and 0 (SFT calls %v)", vqa, gen, sum.Grounding, be.groundedSFT)
	}
}

// TestPolicyGrounding checks that PolicyGrounding adds the grounding items
// to every policy's SFT data and leaves TrainItems counting the row's own.
func TestPolicyGrounding(t *testing.T) {
	cfg := testConfig(t)
	cfg.Seeds = cfg.Seeds[:1]
	cfg.PolicyGrounding = true
	be := newFake(cfg.OutDir)
	p, _ := runFake(t, cfg, be)
	b, err := p.loadBenchmark()
	if err != nil {
		t.Fatal(err)
	}
	want := len(GroundingItems(b.train, b.metadataTypes))
	if want == 0 {
		t.Fatal("the test benchmark has no grounding items")
	}
	for _, row := range []string{PolicySeed, PolicyUnfiltered, PolicyFiltered} {
		dir := p.stageDir(seedStage(1, row))
		if got := be.groundedSFT[filepath.Join(dir+".partial", dirBundle)]; got != want {
			t.Errorf("%s: %d grounding examples, want %d", row, got, want)
		}
		var ps PolicySummary
		if err := readJSON(filepath.Join(dir, SummaryFile), &ps); err != nil {
			t.Fatal(err)
		}
		if row == PolicySeed {
			var seed SeedSummary
			if err := readJSON(filepath.Join(p.stageDir(seedStage(1, "seed")), SummaryFile), &seed); err != nil {
				t.Fatal(err)
			}
			if ps.TrainItems != seed.SeedItems {
				t.Errorf("%s: train items %d, want the %d seed items", row, ps.TrainItems, seed.SeedItems)
			}
		}
	}
}

// TestPolicyFromSeed checks that with PolicyFromSeed the unfiltered and
// filtered rows continue the seed-only row's policy, and without it start
// where the seed-only row does.
func TestPolicyFromSeed(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("from seed ", on), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Seeds = cfg.Seeds[:1]
			cfg.PolicyFromSeed = on
			p, _ := runFake(t, cfg, newFake(cfg.OutDir))
			trained := func(row string) int {
				m, err := readMarker(filepath.Join(p.stageDir(seedStage(1, row)), dirBundle))
				if err != nil {
					t.Fatal(err)
				}
				return m.Trained
			}
			seed := trained(PolicySeed)
			want := seed // the same start, one training each
			if on {
				want = seed + 1 // the seed row's policy, trained once more
			}
			for _, row := range []string{PolicyUnfiltered, PolicyFiltered} {
				if got := trained(row); got != want {
					t.Errorf("%s: trained %d times, want %d (seed row %d)", row, got, want, seed)
				}
			}
		})
	}
}
