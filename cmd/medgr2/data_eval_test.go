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
