package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/medgr2/medgr2/bench"
)

// The README's performance section lies between these lines; the
// README test rewrites it from the committed record (benchRecordDir) with
// -update.
const (
	benchReadmeBegin = "<!-- BEGIN generated from docs/bench/bench.json (`medgr2 bench --out docs/bench`); do not edit -->"
	benchReadmeEnd   = "<!-- END generated bench -->"
)

// benchRecordDir holds the committed record of the last `medgr2 bench`
// run on the default bundle, relative to the repository root.
const benchRecordDir = "docs/bench"

// readBenchRecord reads dir/bench.json.
func readBenchRecord(dir string) (benchRecord, error) {
	var rec benchRecord
	b, err := os.ReadFile(filepath.Join(dir, benchJSONFile))
	if err != nil {
		return rec, fmt.Errorf("bench README: %w", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("bench README: %s: %w", filepath.Join(dir, benchJSONFile), err)
	}
	return rec, nil
}

// benchSection renders the README's performance numbers from rec: how
// the run was made, a table of its runs, and the goals with the ratios
// measured.
func benchSection(rec benchRecord) string {
	var b strings.Builder
	threads := "cores/workers"
	if rec.Threads > 0 {
		threads = fmt.Sprint(rec.Threads)
	}
	other := "unknown"
	if rec.OtherCPU >= 0 {
		other = fmt.Sprintf("%.0f%%", 100*rec.OtherCPU)
	}
	fmt.Fprintf(&b, "Measured %s on %d cores (load average before the run: %s; other processes' share of the CPU during it: %s) by\n\n    %s\n\n",
		rec.Date.Format("2006-01-02"), rec.Cores, cmpStr(rec.LoadAvg, "unknown"), other, rec.Command)
	fmt.Fprintf(&b, "on `%s`, %s, served with %d workers, %s intra-op threads and batches of up to %d, "+
		"response and pixel caches off. The raw baseline does the same work (decode, preprocess, `models.VLM.Answer`) "+
		"in the same process: %d callers on the server's length-bucketed batches, or one request at a time.\n\n",
		rec.Model, rec.Mix, rec.Workers, threads, rec.MaxBatch, rec.Workers)
	b.WriteString("| run | concurrency | req/s | p50 ms | p95 ms | p99 ms | CPU | padding | decode ms | preprocess ms | queue ms | model ms | server other ms |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rec.Suite.Reports() {
		conc := fmt.Sprint(r.Clients)
		if r.Mode == "direct" {
			conc = fmt.Sprintf("%d × batch ≤ %d", r.Clients, r.BatchSize)
		}
		pad, stages := "–", "– | – | – | – | –"
		if r.Padding.Slots() > 0 {
			pad = fmt.Sprintf("%.1f%%", 100*r.Padding.Share)
		}
		if s := r.Stages; s.Responses > 0 {
			img := "– | –" // records from before the server timed its images
			if s.DecodeMS > 0 || s.PreprocessMS > 0 {
				img = fmt.Sprintf("%.2f | %.2f", s.DecodeMS, s.PreprocessMS)
			}
			model := fmt.Sprintf("%.2f", s.ModelMS)
			if s.VisionMS > 0 {
				model += fmt.Sprintf(" (vision %.2f)", s.VisionMS)
			}
			stages = fmt.Sprintf("%s | %.2f | %s | %.2f", img, s.QueueMS, model, s.ServerOtherMS)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.2f | %.2f | %.2f | %.0f%% | %s | %s |\n",
			r.Name, conc, r.Throughput, r.P50MS, r.P95MS, r.P99MS, 100*r.CPU.Util, pad, stages)
	}
	q, rounds := rec.Suite.Ratios, rec.Suite.Rounds
	sat, lat, bat := q.Met()
	// spread gives a ratio's range over the rounds, when there were several.
	spread := func(f func(bench.Ratios) float64, format string) string {
		if len(rounds) < 2 {
			return ""
		}
		lo, hi := f(rounds[0]), f(rounds[0])
		for _, r := range rounds[1:] {
			lo, hi = min(lo, f(r)), max(hi, f(r))
		}
		return fmt.Sprintf(" (rounds: "+format+" to "+format+")", lo, hi)
	}
	if len(rounds) > 1 {
		fmt.Fprintf(&b, "\nThe suite ran %d rounds, forwards and backwards; each ratio is the median of the rounds', and the table's runs are those of the round with the median saturation ratio.\n", len(rounds))
	}
	b.WriteString("\n| goal | measured | met |\n| --- | --- | --- |\n")
	fmt.Fprintf(&b, "| server ≥ %g × raw at saturation | %.2f ×%s | %s |\n", bench.GoalSaturationVsRaw, q.SaturationVsRaw,
		spread(func(r bench.Ratios) float64 { return r.SaturationVsRaw }, "%.2f"), yesNo(sat))
	fmt.Fprintf(&b, "| p50 overhead ≤ %g ms at 1 client | %+.2f ms%s | %s |\n", bench.GoalAddedP50MS, q.AddedP50MS,
		spread(func(r bench.Ratios) float64 { return r.AddedP50MS }, "%+.2f"), yesNo(lat))
	fmt.Fprintf(&b, "| batching gain (32 clients ÷ 1) ≥ %g × | %.2f ×%s | %s |\n", bench.GoalBatchingGain, q.BatchingGain,
		spread(func(r bench.Ratios) float64 { return r.BatchingGain }, "%.2f"), yesNo(bat))
	fmt.Fprintf(&b, "\n![req/s and p50 per run](%s/%s)\n", benchRecordDir, benchPNGFile)
	return b.String()
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// renderBenchReadme returns the README at readme with its performance
// section rendered from the record in dir.
func renderBenchReadme(readme, dir string) ([]byte, error) {
	rec, err := readBenchRecord(dir)
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile(readme)
	if err != nil {
		return nil, fmt.Errorf("bench README: %w", err)
	}
	out, err := replaceBetween(text, benchReadmeBegin, benchReadmeEnd, benchSection(rec))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", readme, err)
	}
	return out, nil
}
