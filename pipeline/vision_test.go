package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
)

// TestVisionPretraining runs the loop with vision pretraining and the
// probe on the fake backend: the encoder sees only training images of the
// kept modalities, every role starts from it, and the report shows the
// probe at each point.
func TestVisionPretraining(t *testing.T) {
	cfg := pretrainConfig(t)
	cfg.Pretrain.Vision = VisionPretrainConfig{Steps: 5}
	cfg.Probe.Limit = 4
	p := fakePipeline(t, cfg)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	vision, err := readMarker(filepath.Join(p.stageDir(StagePretrainVision), dirVision))
	if err != nil {
		t.Fatal(err)
	}
	all, err := data.Load(filepath.Join(p.stageDir(StageData), "all.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]data.Item{}
	for _, it := range all {
		byFile[it.ImageFile()] = it
	}
	if len(vision.VisionImages) == 0 {
		t.Fatal("vision pretraining saw no images")
	}
	for _, f := range vision.VisionImages {
		it, ok := byFile[f]
		switch {
		case !ok:
			t.Errorf("pretraining image %s is not in the benchmark", f)
		case it.Split != data.SplitTrain || it.ModalityType == "X-Ray":
			t.Errorf("pretraining saw %s (split %q, modality %q)", f, it.Split, it.ModalityType)
		}
	}
	for _, dir := range []string{
		filepath.Join(p.stageDir(StagePretrain), string(RoleVQA)),
		filepath.Join(p.stageDir(StagePretrainGenerator), string(RoleGenerator)),
		filepath.Join(p.stageDir(roundStage(1, 0)), dirReward),
		filepath.Join(p.stageDir(seedStage(1, PolicyGRPO)), dirBundle),
	} {
		if m, err := readMarker(dir); err != nil || m.Vision != 1 {
			t.Errorf("%s: vision %d (%v), want the pretrained encoder", dir, m.Vision, err)
		}
	}
	res, err := LoadResults(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Probe) != len(cfg.Data.Collections) {
		t.Fatalf("probe rows %d, want one per collection", len(res.Probe))
	}
	for _, pt := range probePoints {
		if _, ok := res.Probe[0].Features[pt]; !ok {
			t.Errorf("probe lacks %q: %+v", pt, res.Probe[0].Features)
		}
	}
	if got := res.Probe[0].Features[ProbePretrain].Mean; got != 0.7 {
		t.Errorf("probe after vision pretraining %v, want the fake's 0.7", got)
	}
	rep, err := os.ReadFile(filepath.Join(cfg.OutDir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rep), "| random encoder | after vision pretraining | pretrained base | policy after GRPO |") {
		t.Errorf("report has no probe table:\n%s", rep)
	}
}

func TestVisionConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
	}{
		{"negative steps", func(c *Config) { c.Pretrain.Vision.Steps = -1 }},
		{"no pretrain stage", func(c *Config) { c.Pretrain.Items = ""; c.Pretrain.Vision.Steps = 3 }},
		{"negative probe", func(c *Config) { c.Probe.Limit = -2 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := pretrainConfig(t)
			tt.edit(c)
			if err := c.Validate(); err == nil {
				t.Error("no error")
			}
		})
	}
}
