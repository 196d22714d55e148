package pipeline

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const shared = "../../shared/data"

// testConfig is a small run over the real collections.
func testConfig(t *testing.T) *Config {
	t.Helper()
	c := &Config{
		OutDir: t.TempDir(),
		Seeds:  []uint64{1, 2},
		Data: DataConfig{
			Collections:      []string{shared + "/pneumoniamnist", shared + "/bccd", shared + "/busi"},
			Reference:        shared + "/omnimedvqa-text/omnimedvqa_text_sample.json",
			Real:             shared + "/omnimedvqa-real/omnimedvqa_real.json",
			RealLimit:        40,
			MaxPerCollection: 30,
			Holdout:          []string{"X-Ray"},
		},
		SeedFraction: 0.2,
		Rounds:       2,
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunFake(t *testing.T) {
	cfg := testConfig(t)
	letterT := 0.0
	cfg.Generate.AnswerTemperature = &letterT
	be := newFake(cfg.OutDir)
	p, report := runFake(t, cfg, be)
	if len(p.Ran()) != len(p.Stages()) || len(p.Skipped()) != 0 {
		t.Fatalf("ran %d of %d stages, skipped %d", len(p.Ran()), len(p.Stages()), len(p.Skipped()))
	}
	md, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		t.Logf("report:\n%s", md)
	}
	for _, want := range []string{"SFT on seed items only", "SFT on reward-filtered items, then GRPO", BenchHeldOut,
		BenchReal, "| 2 | 2 |", "filtered > unfiltered", "## Image use (test split)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	res, err := LoadResults(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rowOrder {
		if row == PolicyBase { // no pretraining in this run
			continue
		}
		c, ok := res.Table[row][BenchTest]
		if !ok || len(c.PerRun) != 2 || c.N == 0 {
			t.Errorf("row %s: cell %+v", row, c)
		}
	}
	for _, row := range []string{PolicySeed, PolicyUnfiltered, PolicyFiltered, PolicyGRPO} {
		if u, ok := res.ImageUse[row]; !ok || u.N == 0 {
			t.Errorf("row %s: image use %+v", row, u)
		}
	}
	deduped := 0
	for _, s := range cfg.Seeds {
		for _, r := range res.Rounds[s] {
			deduped += r.Deduped
			if r.Generated == 0 || r.Accepted == 0 || r.Parsed == r.Generated {
				t.Errorf("seed %d round %d: %+v", s, r.Round, r)
			}
			// The fake reward model scores right answers high: filtering must raise true accuracy.
			if r.AcceptedTrue <= r.ParsedTrue {
				t.Errorf("seed %d round %d: accepted true %.2f ≤ parsed true %.2f", s, r.Round, r.AcceptedTrue, r.ParsedTrue)
			}
		}
	}
	if deduped == 0 {
		t.Error("no round deduplicated the fake generator's repeated options")
	}
	for _, name := range []string{CurveRounds, CurveLoss} {
		f, err := os.Open(filepath.Join(cfg.OutDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		f.Close()
	}
	var metrics []MetricRecord
	if err := readJSONL(filepath.Join(cfg.OutDir, MetricsFile), &metrics); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, m := range metrics {
		kinds[m.Kind]++
	}
	if kinds["round"] != 4 || kinds["eval"] != 2*4*3 || kinds["train"] == 0 {
		t.Errorf("metric kinds %v", kinds)
	}
	if len(be.sampled) != 4 {
		t.Fatalf("%d Generate calls, want 4", len(be.sampled))
	}
	for i, o := range be.sampled {
		if o.Temperature != cfg.Generate.Temperature || o.AnswerTemperature == nil || *o.AnswerTemperature != letterT {
			t.Errorf("Generate call %d: temperature %v, answer temperature %v; want %v and %v",
				i, o.Temperature, o.AnswerTemperature, cfg.Generate.Temperature, letterT)
		}
	}
}

func TestResumeAfterFailure(t *testing.T) {
	cfg := testConfig(t)
	cfg.Seeds = []uint64{1}
	be := newFake(cfg.OutDir)
	be.failAt["GRPO"] = 1 // the run dies in the GRPO stage
	p, err := New(cfg, be, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background())
	var se *StageError
	if !errors.Is(err, errInjected) || !errors.As(err, &se) || se.Stage != seedStage(1, PolicyGRPO) {
		t.Fatalf("err = %v, want injected failure in %s", err, seedStage(1, PolicyGRPO))
	}
	if _, err := os.Stat(p.stageDir(seedStage(1, PolicyGRPO)) + ".partial"); err != nil {
		t.Errorf("partial folder of the failed stage: %v", err)
	}
	if err := p.ExportDefaults(t.TempDir(), "x"); !errors.Is(err, ErrData) {
		t.Errorf("export from an unfinished run: %v, want ErrData", err)
	}
	done := slices.Clone(p.Ran())
	p2, _ := New(cfg, be, Options{})
	if _, err := p2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p2.Skipped(), done) {
		t.Errorf("skipped %v, want %v", p2.Skipped(), done)
	}
	if want := []string{seedStage(1, PolicyGRPO), StageReport}; !slices.Equal(p2.Ran(), want) {
		t.Errorf("ran %v, want %v", p2.Ran(), want)
	}
	// The finished run exports its default bundles.
	dst := t.TempDir()
	if err := p2.ExportDefaults(dst, "test"); err != nil {
		t.Fatal(err)
	}
	for _, r := range DefaultRoles {
		if _, err := readMarker(filepath.Join(dst, string(r))); err != nil {
			t.Errorf("default %s: %v", r, err)
		}
	}
	var prov Provenance
	if err := readJSON(filepath.Join(dst, ProvenanceFile), &prov); err != nil || prov.Command != "test" || len(prov.Accuracy) != 3 {
		t.Errorf("provenance %+v: %v", prov, err)
	}
	var res Results
	if err := readJSON(filepath.Join(dst, DefaultsResultsFile), &res); err != nil || len(res.Table) == 0 || len(res.ByModality) == 0 {
		t.Errorf("exported results %+v: %v", res, err)
	}
	if rep, err := os.ReadFile(filepath.Join(dst, DefaultsReportFile)); err != nil || !strings.Contains(string(rep), res.Markdown()) {
		t.Errorf("exported report does not hold the results' text: %v", err)
	}
	// A third run has nothing to do.
	p3, _ := New(cfg, be, Options{})
	if _, err := p3.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(p3.Ran()) != 0 {
		t.Errorf("third run ran %v", p3.Ran())
	}
}

func TestConfigChangeInvalidatesDependents(t *testing.T) {
	cfg := testConfig(t)
	cfg.Seeds = []uint64{1}
	be := newFake(cfg.OutDir)
	p, _ := New(cfg, be, Options{})
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(c *Config)
		first  string // first stage that must rerun
		kept   []string
	}{
		{"threshold", func(c *Config) { v := 7.0; c.Filter.Threshold = &v }, roundStage(1, 1),
			[]string{StageData, StageTokenizer, seedStage(1, "seed"), roundStage(1, 0), seedStage(1, PolicySeed), seedStage(1, "baselines")}},
		{"grpo weights", func(c *Config) { c.GRPO.RewardWeight = 0.5 }, seedStage(1, PolicyGRPO),
			[]string{roundStage(1, 2), seedStage(1, PolicyFiltered)}},
		{"seed fraction", func(c *Config) { c.SeedFraction = 0.3 }, seedStage(1, "seed"),
			[]string{StageData, StageTokenizer, seedStage(1, "baselines")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change(cfg)
			p, err := New(cfg, be, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(p.Ran()) == 0 || p.Ran()[0] != tt.first {
				t.Errorf("ran %v, want it to start at %s", p.Ran(), tt.first)
			}
			for _, k := range tt.kept {
				if slices.Contains(p.Ran(), k) {
					t.Errorf("%s reran", k)
				}
			}
			if !slices.Contains(p.Ran(), StageReport) {
				t.Error("report not rerun")
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, _ := New(cfg, newFake(cfg.OutDir), Options{})
	if _, err := p.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestBadStateFile(t *testing.T) {
	cfg := testConfig(t)
	if err := os.WriteFile(filepath.Join(cfg.OutDir, StateFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := New(cfg, newFake(cfg.OutDir), Options{})
	if _, err := p.Run(context.Background()); !errors.Is(err, ErrState) {
		t.Fatalf("err = %v, want ErrState", err)
	}
}

func TestNewBadInput(t *testing.T) {
	cfg := testConfig(t)
	if _, err := New(nil, newFake(""), Options{}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil config: %v", err)
	}
	if _, err := New(cfg, nil, Options{}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil backend: %v", err)
	}
	cfg.Rounds = -1
	if _, err := New(cfg, newFake(""), Options{}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad config: %v", err)
	}
}

// TestSynthesis checks the synthesis pass: it runs after the rounds over
// the whole pool with the last round's models, the report shows it, and
// the unfiltered and filtered policies train on the seed items plus its
// parsed and accepted samples.
func TestSynthesis(t *testing.T) {
	cfg := testConfig(t)
	cfg.Seeds = cfg.Seeds[:1]
	cfg.Synthesis = SynthesisConfig{PerImage: 3}
	be := newFake(cfg.OutDir)
	p, report := runFake(t, cfg, be)
	syn := seedStage(1, StageSynthesis)
	if i, j := slices.Index(p.Stages(), syn), slices.Index(p.Stages(), roundStage(1, cfg.Rounds)); i < 0 || i < j {
		t.Fatalf("stages %v: synthesis missing or before the last round", p.Stages())
	}
	var seed SeedSummary
	if err := readJSON(filepath.Join(p.stageDir(seedStage(1, "seed")), SummaryFile), &seed); err != nil {
		t.Fatal(err)
	}
	var sum RoundSummary
	if err := readJSON(filepath.Join(p.stageDir(syn), SummaryFile), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Generated != 3*seed.PoolImages || sum.Accepted == 0 || sum.Accepted >= sum.Parsed || sum.Round != cfg.Rounds+1 {
		t.Fatalf("synthesis %+v over %d pool images", sum, seed.PoolImages)
	}
	if want := filepath.Join(p.stageDir(roundStage(1, cfg.Rounds)), dirGenerator); be.lastGenerator != want {
		t.Errorf("synthesis sampled %s, want the last round's generator %s", be.lastGenerator, want)
	}
	for row, want := range map[string]int{PolicyUnfiltered: seed.SeedItems + sum.Parsed, PolicyFiltered: seed.SeedItems + sum.Accepted} {
		var ps PolicySummary
		if err := readJSON(filepath.Join(p.stageDir(seedStage(1, row)), SummaryFile), &ps); err != nil {
			t.Fatal(err)
		}
		if ps.TrainItems != want {
			t.Errorf("%s trained on %d items, want %d", row, ps.TrainItems, want)
		}
	}
	md, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 1 | synthesis |", "synthesis: the final reward model's filter raises"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestConfigChangeReruns checks that a config change reruns the stages
// that read the changed setting and those downstream of them, and skips
// the rest.
func TestConfigChangeReruns(t *testing.T) {
	cases := []struct {
		name    string
		change  func(*Config)
		skipped []string // stages that must not rerun
		ran     []string // stages that must rerun
	}{
		{"verify", func(c *Config) { c.Verify = VerifyNone },
			[]string{seedStage(1, "seed"), roundStage(1, 0), seedStage(1, "baselines"), seedStage(1, PolicySeed)},
			[]string{roundStage(1, 1), roundStage(1, 2), seedStage(1, StageSynthesis), seedStage(1, PolicyFiltered), StageReport}},
		{"synthesis", func(c *Config) { c.Synthesis.PerImage = 2 },
			[]string{roundStage(1, 2), seedStage(1, PolicySeed)},
			[]string{seedStage(1, StageSynthesis), seedStage(1, PolicyUnfiltered), seedStage(1, PolicyGRPO)}},
		{"policy grounding", func(c *Config) { c.PolicyGrounding = true },
			[]string{roundStage(1, 2), seedStage(1, StageSynthesis)},
			[]string{seedStage(1, PolicySeed), seedStage(1, PolicyUnfiltered), seedStage(1, PolicyFiltered), seedStage(1, PolicyGRPO)}},
		{"policy", func(c *Config) { c.PolicySFT.Epochs++ },
			[]string{roundStage(1, 2), seedStage(1, StageSynthesis)},
			[]string{seedStage(1, PolicySeed), seedStage(1, PolicyUnfiltered), seedStage(1, PolicyFiltered), seedStage(1, PolicyGRPO)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Seeds = cfg.Seeds[:1]
			cfg.Synthesis.PerImage = 1
			be := newFake(cfg.OutDir)
			runFake(t, cfg, be)
			c.change(cfg)
			p2, _ := runFake(t, cfg, be)
			for _, s := range c.skipped {
				if !slices.Contains(p2.Skipped(), s) {
					t.Errorf("%s reran; ran %v", s, p2.Ran())
				}
			}
			for _, s := range c.ran {
				if !slices.Contains(p2.Ran(), s) {
					t.Errorf("%s was skipped; ran %v", s, p2.Ran())
				}
			}
		})
	}
}

// runFake runs cfg to the end on be and returns the pipeline and the
// report's path; a failure shows the run's progress log.
func runFake(t *testing.T, cfg *Config, be *fakeBackend) (*Pipeline, string) {
	t.Helper()
	var log bytes.Buffer
	p, err := New(cfg, be, Options{Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	report, err := p.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	return p, report
}
