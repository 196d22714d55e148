package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/pipeline"
)

// TestPipelineQuick runs `medgr2 pipeline --quick` for real (ONNX Runtime,
// the shared data, tiny sizes) end to end, then reruns it to check that
// every finished stage is skipped. It takes a few minutes on two cores, so
// -short leaves it out; a normal `go test` (CI) runs it.
func TestPipelineQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick pipeline is a real end-to-end run (minutes); run without -short")
	}
	if os.Getenv("MEDGR2_ORT_LIB") == "" {
		t.Fatal("MEDGR2_ORT_LIB is not set: the quick pipeline needs ONNX Runtime (run via make test, or export it)")
	}
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"pipeline", "--quick", "--config", "../../configs/pipeline.json", "--out", out, "--threads", "2"}
	var so, se bytes.Buffer
	if err := run(ctx, args, &so, &se); err != nil {
		t.Fatalf("pipeline: %v\n%s", err, tailOf(se.String(), 4000))
	}
	dir := out + "-quick"
	md, err := os.ReadFile(filepath.Join(dir, pipeline.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pretrained base", "SFT on seed items only", "SFT on all generated items (unfiltered)",
		"SFT on reward-filtered items, then GRPO", "real OmniMedVQA", "held-out modalities", "## Co-development rounds"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	res, err := pipeline.LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	// random, majority, the pretrained base and the four policies.
	if _, ok := res.Table[pipeline.PolicyBase]; len(res.Table) != 7 || !ok || len(res.Rounds[1]) != 2 {
		t.Errorf("results: %d rows, rounds %v", len(res.Table), res.Rounds)
	}
	for _, r := range res.Rounds[1] {
		if r.Generated == 0 {
			t.Errorf("round %d generated nothing", r.Round)
		}
	}
	for _, f := range []string{pipeline.MetricsFile, pipeline.CurveRounds, pipeline.CurveLoss, pipeline.StateFile,
		"stages/s1/policy-grpo/bundle/model.json", "stages/s1/round-2/generator/model.json", "stages/s1/round-2/reward/model.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	so.Reset()
	se.Reset()
	if err := run(ctx, args, &so, &se); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if !strings.Contains(so.String(), "0 stages run") {
		t.Errorf("rerun did not skip every stage: %s", so.String())
	}
}

func TestPipelineUsageErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"rounds": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		usage bool  // exit code 2
		is    error // or the error wraps this
	}{
		{"extra argument", []string{"pipeline", "extra"}, true, nil},
		{"bad flag", []string{"pipeline", "--nope"}, true, nil},
		{"negative threads", []string{"pipeline", "--threads", "-1"}, true, nil},
		{"no jobs", []string{"pipeline", "--jobs", "0"}, true, nil},
		{"missing config", []string{"pipeline", "--config", filepath.Join(dir, "none.json")}, false, pipeline.ErrConfig},
		{"invalid config", []string{"pipeline", "--config", bad}, false, pipeline.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var so, se bytes.Buffer
			err := run(ctx, tt.args, &so, &se)
			if err == nil {
				t.Fatal("no error")
			}
			if got := exitCode(err) == 2; got != tt.usage {
				t.Errorf("exit code %d for %v", exitCode(err), err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err %v, want %v", err, tt.is)
			}
		})
	}
}

// tailOf returns the last n bytes of s.
func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestPipelineThreadsFollowJobs checks that without --threads each job
// gets its share of the cores, at least one thread, and that --threads
// given is kept.
func TestPipelineThreadsFollowJobs(t *testing.T) {
	cores := goruntime.NumCPU()
	for _, tc := range []struct {
		args    []string
		threads int
	}{
		{[]string{"--jobs", "1"}, cores},
		{[]string{"--jobs", fmt.Sprint(cores)}, 1},
		{[]string{"--jobs", fmt.Sprint(4 * cores)}, 1},
		{[]string{"--jobs", "2", "--threads", "3"}, 3},
	} {
		f, err := parsePipelineFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if f.threads != tc.threads {
			t.Errorf("%v: %d threads, want %d", tc.args, f.threads, tc.threads)
		}
	}
}
