package pipeline

import (
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/train"
)

func TestTargets(t *testing.T) {
	cell := func(mean, sd float64) Cell {
		return Cell{Mean: mean, Spread: sd, PerRun: []float64{mean, mean}, N: 100}
	}
	base := func() *Results {
		return &Results{Table: map[string]map[string]Cell{
			"majority": {BenchTest: cell(0.5, 0), BenchReal: cell(0.4, 0)},
			"random":   {BenchHeldOut: cell(0.25, 0.02)},
			PolicyGRPO: {BenchTest: cell(0.7, 0.05), BenchReal: cell(0.5, 0.03), BenchHeldOut: cell(0.4, 0.05)},
		}, ImageUse: map[string]eval.Sensitivity{PolicyGRPO: {MeanTV: 0.3}, PolicySeed: {MeanTV: 0.1}}}
	}
	tests := []struct {
		name   string
		edit   func(*Results)
		met    int
		missed []string
	}{
		{"all met but one image use", func(*Results) {}, 4, []string{rowTitle[PolicySeed]}},
		{"within noise", func(r *Results) { r.Table[PolicyGRPO][BenchTest] = cell(0.52, 0.05) }, 3, []string{"on test split"}},
		{"below majority", func(r *Results) { r.Table[PolicyGRPO][BenchReal] = cell(0.3, 0) }, 3, []string{"on real OmniMedVQA"}},
		{"held-out at chance", func(r *Results) { r.Table[PolicyGRPO][BenchHeldOut] = cell(0.26, 0.02) }, 3, []string{"on held-out modalities"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.edit(r)
			lines := targets(r)
			if len(lines) != 5 {
				t.Fatalf("got %d lines, want 5:\n%s", len(lines), strings.Join(lines, "\n"))
			}
			met := 0
			for _, l := range lines {
				if strings.Contains(l, ": met") {
					met++
				}
			}
			if met != tt.met {
				t.Errorf("met %d, want %d:\n%s", met, tt.met, strings.Join(lines, "\n"))
			}
			for _, want := range tt.missed {
				found := false
				for _, l := range lines {
					if strings.Contains(l, want) && strings.Contains(l, "MISSED") {
						found = true
					}
				}
				if !found {
					t.Errorf("no MISSED line naming %q:\n%s", want, strings.Join(lines, "\n"))
				}
			}
		})
	}
}

func TestModalityTables(t *testing.T) {
	res := &Results{ByModality: map[string]map[string]map[string]Cell{
		PolicyGRPO: {BenchTest: {"CT": {Mean: 0.5, N: 10}, "OCT": {Mean: 0.75, Spread: 0.1, N: 4}}},
		"majority": {BenchTest: {"CT": {Mean: 0.3, N: 10}}},
	}}
	got := modalityTables(res)
	for _, want := range []string{"### test split", "| system | CT (n=10) | OCT (n=4) |",
		"| " + rowTitle[PolicyGRPO] + " | 50.0 ± 0.0 | 75.0 ± 10.0 |", "| " + rowTitle["majority"] + " | 30.0 ± 0.0 | – |"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, BenchReal) {
		t.Errorf("a benchmark without cells got a table:\n%s", got)
	}
	if modalityTables(&Results{}) != "" || questionTypeTables(&Results{}) != "" {
		t.Error("empty results rendered a section")
	}
	types := questionTypeTables(&Results{ByQuestionType: res.ByModality})
	if !strings.Contains(types, "## Accuracy per question type") || !strings.Contains(types, "| system | CT (n=10) | OCT (n=4) |") {
		t.Errorf("question-type tables:\n%s", types)
	}
}

// TestBreakdownCells checks that per-run group scores become one cell per
// row, benchmark and group, over the runs that measured the group.
func TestBreakdownCells(t *testing.T) {
	d := breakdown{}
	d.add(PolicyGRPO, BenchTest, []eval.Score{{Group: "Modality Recognition", N: 20, Accuracy: 0.5}, {Group: "Anatomy Identification", N: 10, Accuracy: 1}})
	d.add(PolicyGRPO, BenchTest, []eval.Score{{Group: "Modality Recognition", N: 20, Accuracy: 0.7}})
	d.add(PolicySeed, BenchReal, nil)
	got := d.cells()
	mean, sd := train.MeanStd([]float64{0.5, 0.7})
	if c := got[PolicyGRPO][BenchTest]["Modality Recognition"]; c.Mean != mean || c.Spread != sd || c.N != 20 || len(c.PerRun) != 2 {
		t.Errorf("modality cell %+v, want mean %v sd %v over 2 runs of 20", c, mean, sd)
	}
	if c := got[PolicyGRPO][BenchTest]["Anatomy Identification"]; c.Mean != 1 || len(c.PerRun) != 1 || c.N != 10 {
		t.Errorf("anatomy cell %+v, want 1.0 over one run of 10", c)
	}
	if _, ok := got[PolicySeed]; ok {
		t.Errorf("a row without scores got cells: %v", got[PolicySeed])
	}
	if (breakdown{}).cells() != nil {
		t.Error("an empty breakdown gave cells")
	}
}
