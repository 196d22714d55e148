package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/models"
)

func TestDataBuildStatsEval(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "data")
	out := t.TempDir()
	ctx := context.Background()
	var so, se bytes.Buffer
	if err := run(ctx, []string{"data", "build", "--root", root, "--out", out, "--max-per-collection", "15", "--image-size", "16"}, &so, &se); err != nil {
		t.Fatalf("data build: %v\n%s", err, se.String())
	}
	so.Reset()
	if err := run(ctx, []string{"data", "stats", filepath.Join(out, "all.jsonl")}, &so, &se); err != nil || !strings.Contains(so.String(), "answer letter") {
		t.Fatalf("data stats: %v\n%s", err, so.String())
	}
	answers := filepath.Join(t.TempDir(), "answers.jsonl")
	if err := os.WriteFile(answers, []byte(`{"question_id":"none","output":"A"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	so.Reset()
	rep := filepath.Join(t.TempDir(), "rep")
	args := []string{"eval", "--data", filepath.Join(out, "all.jsonl"), "--answers", answers, "--out", rep,
		"--real", filepath.Join(root, "omnimedvqa-real", "omnimedvqa_real.json")}
	if err := run(ctx, args, &so, &se); err != nil {
		t.Fatalf("eval: %v", err)
	}
	for _, f := range []string{"accuracy.txt", "accuracy.json", "accuracy.png", "predictions.jsonl"} {
		if _, err := os.Stat(filepath.Join(rep, f)); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(so.String(), "OmniMedVQA real") || !strings.Contains(so.String(), "majority") {
		t.Fatalf("report lacks rows:\n%s", so.String())
	}
}

func TestEvalUsageErrors(t *testing.T) {
	ctx := context.Background()
	cases := [][]string{
		{"eval", "--answerer", "random"},
		{"eval", "--data", "x.json"},
		{"eval", "--data", "x.json", "--answerer", "random", "--answers", "a.jsonl"},
		{"eval", "--data", "x.json", "--answerer", "random", "--image-swap"},
		{"data"},
		{"data", "frobnicate"},
		{"data", "stats"},
	}
	for _, args := range cases {
		var u usageError
		if err := run(ctx, args, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, &u) {
			t.Errorf("%v: %v, want usage error", args, err)
		}
	}
	err := run(ctx, []string{"eval", "--data", filepath.Join("..", "..", "..", "shared", "data", "omnimedvqa-real", "omnimedvqa_real.json"), "--model", "dir"}, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, models.ErrMissingFile) { // "dir" is not a bundle
		t.Fatalf("--model: %v", err)
	}
}

// TestDataBuildConfig builds the benchmark of a pipeline config (what
// `make demo` does) and refuses build flags the config would override.
func TestDataBuildConfig(t *testing.T) {
	shared, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "data"))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "pipeline.json")
	body := `{"data": {"collections": ["` + shared + `/pneumoniamnist", "` + shared + `/busi"],
		"reference": "` + shared + `/omnimedvqa-text/omnimedvqa_text_sample.json", "max_per_collection": 12,
		"holdout": ["X-Ray"], "test_limit": 5}}`
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out := t.TempDir()
	var so, se bytes.Buffer
	if err := run(ctx, []string{"data", "build", "--config", conf, "--out", out}, &so, &se); err != nil {
		t.Fatalf("data build --config: %v\n%s", err, se.String())
	}
	if !strings.Contains(so.String(), "eval-test-split.jsonl") {
		t.Errorf("output names no test split file:\n%s", so.String())
	}
	var u usageError
	err = run(ctx, []string{"data", "build", "--config", conf, "--out", out, "--image-size", "32"}, &so, &se)
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "--image-size") {
		t.Errorf("a clashing flag gave %v, want a usage error naming it", err)
	}
}
