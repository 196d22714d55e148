package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medgr2/medgr2/bench"
)

// TestBenchReadmeIsGenerated checks that the README's performance section
// shows what the committed record docs/bench/bench.json says. With
// -update it rewrites the section instead.
func TestBenchReadmeIsGenerated(t *testing.T) {
	readme, dir := filepath.Join("..", "..", "README.md"), filepath.Join("..", "..", benchRecordDir)
	checkGenerated(t, readme, func() ([]byte, error) { return renderBenchReadme(readme, dir) },
		benchRecordDir+"/"+benchJSONFile, "TestBenchReadmeIsGenerated")
}

func TestBenchSection(t *testing.T) {
	rec := benchRecord{Command: "medgr2 bench --out docs/bench", Date: time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC), LoadAvg: "0.10 0.20 0.30 1/100 7",
		OtherCPU: 0.031, Cores: 2, Model: "models/default/vqa", Workers: 2, MaxBatch: 16, Mix: "default mix of 64 requests from ../shared/data"}
	rec.Suite = bench.SuiteResult{
		Raw:        bench.Report{Name: "raw", Mode: "direct", Clients: 2, BatchSize: 16, Throughput: 100, P50MS: 150, CPU: bench.CPU{Util: 0.97}},
		RawSerial:  bench.Report{Name: "raw serial", Mode: "direct", Clients: 1, BatchSize: 1, Throughput: 50, P50MS: 6.5},
		LowLoad:    bench.Report{Name: "server 1 client", Mode: "closed", Clients: 1, Throughput: 48, P50MS: 7.25, Stages: bench.Stages{Responses: 3, QueueMS: 0.05, ModelMS: 6, ServerOtherMS: 1.1}},
		Clients32:  bench.Report{Name: "server 32 clients", Mode: "closed", Clients: 32, Throughput: 96, Padding: bench.Padding{PromptTokens: 900, PaddingTokens: 100, Share: 0.1}},
		Saturation: bench.Report{Name: "server saturation", Mode: "closed", Clients: 64, Throughput: 97},
		Ratios:     bench.Ratios{SaturationVsRaw: 0.97, AddedP50MS: 0.75, BatchingGain: 2.0},
	}
	got := benchSection(rec)
	for _, want := range []string{
		"Measured 2026-12-07 on 2 cores (load average before the run: 0.10 0.20 0.30 1/100 7; other processes' share of the CPU during it: 3%) by\n\n    medgr2 bench --out docs/bench\n",
		"| raw | 2 × batch ≤ 16 | 100.0 | 150.00 |",
		"| 97% | – | – | – | – |",
		"| server 1 client | 1 | 48.0 | 7.25 |",
		"| 0.05 | 6.00 | 1.10 |",
		"| 10.0% |",
		"| server ≥ 0.95 × raw at saturation | 0.97 × | yes |",
		"| p50 overhead ≤ 1 ms at 1 client | +0.75 ms | yes |",
		"| batching gain (32 clients ÷ 1) ≥ 2 × | 2.00 × | yes |",
		"](docs/bench/bench.png)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
	rec.Suite.Ratios.BatchingGain = 0.9
	if got := benchSection(rec); !strings.Contains(got, "| 0.90 × | no |") {
		t.Errorf("an unmet goal is not marked:\n%s", got)
	}
	rec.Suite.Rounds = []bench.Ratios{{SaturationVsRaw: 0.91, AddedP50MS: 0.5, BatchingGain: 0.8},
		{SaturationVsRaw: 0.97, AddedP50MS: 0.75, BatchingGain: 0.9}, {SaturationVsRaw: 0.99, AddedP50MS: 1.5, BatchingGain: 1.1}}
	got = benchSection(rec)
	for _, want := range []string{
		"ran 3 rounds",
		"| 0.97 × (rounds: 0.91 to 0.99) | yes |",
		"| +0.75 ms (rounds: +0.50 to +1.50) | yes |",
		"| 0.90 × (rounds: 0.80 to 1.10) | no |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section with rounds lacks %q:\n%s", want, got)
		}
	}
}

func TestRenderBenchReadme(t *testing.T) {
	dir := t.TempDir()
	rec := benchRecord{Command: "medgr2 bench", Cores: 2, Suite: bench.SuiteResult{Ratios: bench.Ratios{BatchingGain: 1.25}}}
	rec.Suite.Raw = bench.Report{Name: "raw", Mode: "direct", Throughput: 1}
	if err := writeBenchRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(dir, "README.md")
	write := func(s string) {
		if err := os.WriteFile(readme, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# x\n\n" + benchReadmeBegin + "\nstale 9.99 ×\n" + benchReadmeEnd + "\nafter\n")
	out, err := renderBenchReadme(readme, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out); strings.Contains(s, "9.99") || !strings.Contains(s, "| 1.25 × | no |\n") || !strings.HasSuffix(s, benchReadmeEnd+"\nafter\n") {
		t.Fatalf("rendered:\n%s", s)
	}
	write("# no section\n")
	if _, err := renderBenchReadme(readme, dir); !errors.Is(err, errReadmeMarkers) {
		t.Errorf("no markers: err %v", err)
	}
	if _, err := renderBenchReadme(readme, t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no record: err %v", err)
	}
}
