package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/train"
)

// smallGRPOBundle exports a narrow random VQA bundle (fast train steps).
func smallGRPOBundle(t *testing.T) *models.Bundle {
	t.Helper()
	c := models.DefaultConfig(0)
	c.HiddenSize, c.IntermediateSize, c.NumLayers, c.NumHeads, c.NumKVHeads = 64, 128, 1, 4, 2
	c.MRopeSection = []int{2, 3, 3}
	c.Vision.Depth, c.Vision.EmbedDim = 1, 48
	b, err := models.Export(context.Background(), t.TempDir(), c, models.ExportOptions{
		Tokenizer: filepath.Join("..", "..", "models", "testdata", "vqa_tokenizer.json"), Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrainGRPOCommand runs GRPO from a JSON config with flag overrides
// and the hybrid reward (reward model + exact match + format), then
// resumes it for one more update.
func TestTrainGRPOCommand(t *testing.T) {
	ctx := context.Background()
	b := smallGRPOBundle(t)
	rm, err := train.RewardBundle(ctx, b, filepath.Join(t.TempDir(), "rm"), 1)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	conf := filepath.Join(t.TempDir(), "grpo.json")
	js, _ := json.Marshal(map[string]any{"bundle": b.Dir, "data": testRealItems, "out": out, "steps": 2,
		"batch": 4, "group": 2, "lengths": []int{256}, "max_new_tokens": 4, "max_items": 4, "lr": 1e-3,
		"reward_model": rm.Dir, "format_weight": 0.1, "beta": 0.04, "checkpoint_every": 1})
	if err := os.WriteFile(conf, js, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"train", "grpo", "--config", conf, "--iterations", "2"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "trained grpo for 2 steps") {
		t.Fatalf("stdout: %s", stdout.String())
	}
	stdout.Reset()
	if err := run(ctx, []string{"train", "grpo", "--config", conf, "--iterations", "2", "--steps", "3", "--resume"}, &stdout, &stderr); err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "trained grpo for 3 steps") {
		t.Fatalf("stdout after resume: %s", stdout.String())
	}
	metrics, err := os.ReadFile(filepath.Join(out, train.FileMetrics))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(metrics)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], `"rewards/reward_model/mean"`) || !strings.Contains(lines[2], `"kl"`) {
		t.Fatalf("metrics.jsonl after resume: %d lines, last %s", len(lines), lines[len(lines)-1])
	}
	if _, err := models.Load(ctx, filepath.Join(out, train.DirBundle)); err != nil {
		t.Fatalf("trained bundle: %v", err)
	}
}

// TestTrainGRPOCommandErrors: bad settings are named before any work.
func TestTrainGRPOCommandErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"train", "grpo", "--bundle", dir, "--data", testRealItems, "--out", dir}
	badConf := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badConf, []byte(`{"group": 4, "gruop": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"group of one", append(base, "--reward_weight", "0", "--group", "1"), "group 1"},
		{"weights all zero", append(base, "--reward_weight", "0", "--match_weight", "0"), "every reward weight is zero"},
		{"reward model missing", base, "needs a reward-model bundle"},
		{"reward model not a bundle", append(base, "--reward_model", filepath.Join(dir, "nope")), "reward model"},
		{"batch not whole groups", append(base, "--reward_weight", "0", "--batch", "12", "--group", "8"), "multiple of the group"},
		{"negative beta", append(base, "--reward_weight", "0", "--beta", "-1"), "beta -1"},
		{"no bundle", []string{"train", "grpo", "--data", testRealItems, "--out", dir}, "--bundle, --data and --out are required"},
		{"unknown config field", append(base, "--config", badConf), "gruop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			err := run(context.Background(), c.args, &out, &errw)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}
