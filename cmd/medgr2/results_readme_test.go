package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResultsReadmeIsGenerated checks that the README's results section
// shows what models/default/RESULTS.json and PROVENANCE.json say. With
// -update it rewrites the section instead.
func TestResultsReadmeIsGenerated(t *testing.T) {
	readme, dir := filepath.Join("..", "..", "README.md"), filepath.Join("..", "..", defaultBundles)
	checkGenerated(t, readme, func() ([]byte, error) { return renderResultsReadme(readme, dir) },
		dir+"/RESULTS.json", "TestResultsReadmeIsGenerated")
}

func TestUpdateResultsReadme(t *testing.T) {
	dir := fakeDefaults(t, testProvenance, "")
	results := `{"seeds":[7,8],"holdout_modalities":["X-Ray"],"total_seconds":1500,"elapsed_seconds":1200,
"table":{"majority":{"test split":{"mean":0.5,"spread":0,"per_seed":[0.5,0.5],"n":100}},
"policy-grpo":{"test split":{"mean":0.7,"spread":0.05,"per_seed":[0.65,0.75],"n":100}}}}`
	if err := os.WriteFile(filepath.Join(dir, "RESULTS.json"), []byte(results), 0o644); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(readme, []byte("# x\n"+resultsReadmeBegin+"\nstale 68.8\n"+resultsReadmeEnd+"\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateResultsReadme(readme, dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    medgr2 pipeline --config c.json --defaults d\n",
		"Seeds [7 8], held-out modalities X-Ray, 20.0 min elapsed (stage wall times summed: 25.0 min)",
		"### Results (accuracy %",
		"| SFT on reward-filtered items, then GRPO | 70.0 ± 5.0 (n=100) | – | – |",
		"beats the majority answer beyond noise on test split: met (70.0 vs 50.0)",
		resultsReadmeEnd + "\nafter\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "68.8") {
		t.Errorf("stale number kept:\n%s", got)
	}
	if err := os.Remove(filepath.Join(dir, "RESULTS.json")); err != nil {
		t.Fatal(err)
	}
	if err := updateResultsReadme(readme, dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing RESULTS.json: %v, want a not-exist error", err)
	}
}
