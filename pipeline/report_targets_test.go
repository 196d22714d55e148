package pipeline

import (
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data/eval"
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
	if modalityTables(&Results{}) != "" {
		t.Error("empty results rendered a section")
	}
}
