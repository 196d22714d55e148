package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/train"
)

// Files the report stage writes into Config.OutDir (and its own folder).
const (
	ReportFile  = "report.md"     // the Markdown report with the results table
	MetricsFile = "metrics.jsonl" // one JSON object per stage metric record
	ResultsFile = "results.json"  // the results table as JSON
	CurveRounds = "rounds.png"    // acceptance rate and accepted-sample true accuracy per round
	CurveLoss   = "training.png"  // training loss curves of the last seed
)

// Row names of the results table, in order.
var rowOrder = []string{"random", "majority", PolicyBase, PolicySeed, PolicyUnfiltered, PolicyFiltered, PolicyGRPO}

// rowTitle is the report's label for each row.
var rowTitle = map[string]string{
	"random":         "random",
	"majority":       "majority (train-split answers)",
	PolicyBase:       "pretrained base (no MedGR² data)",
	PolicySeed:       "SFT on seed items only",
	PolicyUnfiltered: "SFT on all generated items (unfiltered)",
	PolicyFiltered:   "SFT on reward-filtered items",
	PolicyGRPO:       "SFT on reward-filtered items, then GRPO",
}

// Cell is one (row, benchmark) result over seeds.
type Cell struct {
	Mean   float64   `json:"mean"`   // mean accuracy over seeds
	Spread float64   `json:"spread"` // sample standard deviation over seeds (0 with one seed)
	PerRun []float64 `json:"per_seed"`
	N      int       `json:"n"` // items per run
}

// Results is the aggregated table and the round logs.
type Results struct {
	Seeds  []uint64                   `json:"seeds"`
	Table  map[string]map[string]Cell `json:"table"` // row → benchmark → cell
	Rounds map[uint64][]RoundSummary  `json:"rounds"`
	// ImageUse is each policy row's image use on the test split, averaged
	// over seeds (rows whose stages measured it).
	ImageUse map[string]eval.Sensitivity `json:"image_use,omitempty"`
	// Synthesis holds each seed's synthesis pass, when on.
	Synthesis map[uint64]RoundSummary `json:"synthesis,omitempty"`
	// ByModality breaks each row's accuracy down by the items' modality:
	// row → benchmark → modality → cell over seeds.
	ByModality map[string]map[string]map[string]Cell `json:"by_modality,omitempty"`
	// ByQuestionType is the same breakdown by the items' question type.
	ByQuestionType map[string]map[string]map[string]Cell `json:"by_question_type,omitempty"`
	// Probe is the linear probe per labelled collection at each
	// measurement point (nil when the probe is off).
	Probe  []ProbeRow         `json:"probe,omitempty"`
	Stages map[string]float64 `json:"stage_seconds"`
	Total  float64            `json:"total_seconds"` // the stages' wall times summed
	// Elapsed is the wall time from the first stage's start to the last
	// one's finish (below Total when stages ran at once; it includes any
	// pause between an interrupted run and its resumption).
	Elapsed float64 `json:"elapsed_seconds"`
	// PretrainParts is the wall time of each part of the pretrain stage
	// (PretrainSummary.Seconds).
	PretrainParts map[string]float64 `json:"pretrain_seconds,omitempty"`
	Holdout       []string           `json:"holdout_modalities"`
}

// runReport aggregates every stage's summary into results.json,
// metrics.jsonl, the curves and report.md, in dir and in OutDir.
func (p *Pipeline) runReport(_ context.Context, dir string) (any, error) {
	res, metrics, err := p.collect()
	if err != nil {
		return nil, err
	}
	files := map[string]func(string) error{
		ResultsFile: func(path string) error { return writeJSON(path, res) },
		MetricsFile: func(path string) error { return writeJSONL(path, metrics) },
		ReportFile:  func(path string) error { return writeAtomic(path, []byte(p.markdown(res))) },
		CurveRounds: func(path string) error { return writePNG(path, roundsChart(res)) },
		CurveLoss:   func(path string) error { return writePNG(path, p.lossChart()) },
	}
	for name, write := range files {
		for _, d := range []string{dir, p.cfg.OutDir} {
			if err := write(filepath.Join(d, name)); err != nil {
				return nil, fmt.Errorf("write %s: %w", name, err)
			}
		}
	}
	return map[string]any{"rows": len(res.Table), "total_seconds": res.Total}, nil
}

// MetricRecord is one line of metrics.jsonl.
type MetricRecord struct {
	Stage   string             `json:"stage"`
	Seed    uint64             `json:"seed,omitempty"`
	Round   *int               `json:"round,omitempty"`
	Kind    string             `json:"kind"` // "round", "synthesis", "train", "eval"
	Name    string             `json:"name,omitempty"`
	Metrics map[string]float64 `json:"metrics"`
}

// collect reads the stage summaries and the state file.
func (p *Pipeline) collect() (*Results, []MetricRecord, error) {
	st, err := loadState(filepath.Join(p.cfg.OutDir, StateFile))
	if err != nil {
		return nil, nil, err
	}
	res := &Results{Seeds: p.cfg.Seeds, Table: map[string]map[string]Cell{}, Rounds: map[uint64][]RoundSummary{},
		Stages: map[string]float64{}}
	var first, last time.Time
	for name, rec := range st.Stages {
		if _, ok := p.hashes[name]; ok && name != StageReport {
			res.Stages[name] = rec.Seconds
			res.Total += rec.Seconds
			t0 := rec.Finished.Add(-time.Duration(rec.Seconds * float64(time.Second)))
			if first.IsZero() || t0.Before(first) {
				first = t0
			}
			if rec.Finished.After(last) {
				last = rec.Finished
			}
		}
	}
	res.Elapsed = last.Sub(first).Seconds()
	var ds DataSummary
	if err := readJSON(filepath.Join(p.stageDir(StageData), SummaryFile), &ds); err != nil {
		return nil, nil, err
	}
	res.Holdout = ds.Holdout
	perRow := map[string]map[string][]float64{}
	nItems := map[string]map[string]int{}
	byMod, byType := breakdown{}, breakdown{}
	use := map[string][]eval.Sensitivity{}
	add := func(ps PolicySummary, row string) {
		if perRow[row] == nil {
			perRow[row], nItems[row] = map[string][]float64{}, map[string]int{}
		}
		if ps.ImageUse != nil {
			use[row] = append(use[row], *ps.ImageUse)
		}
		for b, s := range ps.Eval {
			perRow[row][b] = append(perRow[row][b], s.Overall.Accuracy)
			nItems[row][b] = s.Overall.N
			byMod.add(row, b, s.ByModality)
			byType.add(row, b, s.ByQuestionType)
		}
	}
	var metrics []MetricRecord
	probes := probeTable{}
	if p.pretrainEnabled() {
		sums := map[string]*PretrainSummary{}
		res.PretrainParts = map[string]float64{}
		for _, st := range []string{StagePretrainVision, StagePretrain, StagePretrainGenerator, StagePretrainReward} {
			if st == StagePretrainVision && !p.visionEnabled() || st == StagePretrainReward && !p.pretrained(RoleReward) {
				continue
			}
			var sum PretrainSummary
			if err := readJSON(filepath.Join(p.stageDir(st), SummaryFile), &sum); err != nil {
				return nil, nil, err
			}
			for point, rs := range sum.Probe {
				probes.add(point, rs)
			}
			maps.Copy(res.PretrainParts, sum.Seconds)
			sums[st] = &sum
		}
		pre, gen := sums[StagePretrain], sums[StagePretrainGenerator]
		add(PolicySummary{Name: PolicyBase, TrainItems: pre.Items, Eval: pre.Eval, ImageUse: pre.ImageUse}, PolicyBase)
		metrics = append(metrics, trainRecord(StagePretrain, 0, nil, "vqa", pre.VQA),
			trainRecord(StagePretrainGenerator, 0, nil, "generator", gen.Generator))
	}
	for _, s := range p.cfg.Seeds {
		m, err := p.collectSeed(s, res, add, probes)
		if err != nil {
			return nil, nil, err
		}
		metrics = append(metrics, m...)
	}
	for row, byBench := range perRow {
		res.Table[row] = map[string]Cell{}
		for b, v := range byBench {
			mean, sd := train.MeanStd(v)
			res.Table[row][b] = Cell{Mean: mean, Spread: sd, PerRun: v, N: nItems[row][b]}
		}
	}
	res.ByModality, res.ByQuestionType = byMod.cells(), byType.cells()
	res.Probe = probes.rows()
	for row, ss := range use {
		if res.ImageUse == nil {
			res.ImageUse = map[string]eval.Sensitivity{}
		}
		res.ImageUse[row] = meanSensitivity(ss)
	}
	return res, metrics, nil
}

// breakdown collects per-run accuracies of groups of items (modalities,
// question types): row → benchmark → group → one score per run.
type breakdown map[string]map[string]map[string][]eval.Score

// add records one run's group scores.
func (d breakdown) add(row, bench string, scores []eval.Score) {
	if d[row] == nil {
		d[row] = map[string]map[string][]eval.Score{}
	}
	if d[row][bench] == nil {
		d[row][bench] = map[string][]eval.Score{}
	}
	for _, sc := range scores {
		d[row][bench][sc.Group] = append(d[row][bench][sc.Group], sc)
	}
}

// cells aggregates the runs into mean ± sd cells; nil when empty.
func (d breakdown) cells() map[string]map[string]map[string]Cell {
	var out map[string]map[string]map[string]Cell
	for row, byBench := range d {
		for b, byGroup := range byBench {
			for g, runs := range byGroup {
				v := make([]float64, len(runs))
				for i, r := range runs {
					v[i] = r.Accuracy
				}
				if out == nil {
					out = map[string]map[string]map[string]Cell{}
				}
				if out[row] == nil {
					out[row] = map[string]map[string]Cell{}
				}
				if out[row][b] == nil {
					out[row][b] = map[string]Cell{}
				}
				mean, sd := train.MeanStd(v)
				out[row][b][g] = Cell{Mean: mean, Spread: sd, PerRun: v, N: runs[len(runs)-1].N}
			}
		}
	}
	return out
}

// collectSeed reads one seed's round and policy summaries.
func (p *Pipeline) collectSeed(s uint64, res *Results, add func(PolicySummary, string), probes probeTable) ([]MetricRecord, error) {
	var metrics []MetricRecord
	var boot BootstrapSummary
	if err := readJSON(filepath.Join(p.stageDir(roundStage(s, 0)), SummaryFile), &boot); err != nil {
		return nil, err
	}
	zero := 0
	metrics = append(metrics, trainRecord(roundStage(s, 0), s, &zero, "generator_sft", boot.Generator),
		trainRecord(roundStage(s, 0), s, &zero, "reward", boot.Reward))
	for k := 1; k <= p.cfg.Rounds; k++ {
		var r RoundSummary
		if err := readJSON(filepath.Join(p.stageDir(roundStage(s, k)), SummaryFile), &r); err != nil {
			return nil, err
		}
		res.Rounds[s] = append(res.Rounds[s], r)
		k := k
		metrics = append(metrics, MetricRecord{Stage: roundStage(s, k), Seed: s, Round: &k, Kind: "round",
			Metrics: map[string]float64{"generated": float64(r.Generated), "parsed": float64(r.Parsed),
				"accepted": float64(r.Accepted), "acceptance_rate": r.AcceptanceRate,
				"accepted_true_accuracy": r.AcceptedTrue, "parsed_true_accuracy": r.ParsedTrue,
				"accepted_coherent": r.AcceptedCoherent, "parsed_coherent": r.ParsedCoherent,
				"mean_score": r.MeanScore, "accepted_templates": float64(r.Templates)}},
			trainRecord(roundStage(s, k), s, &k, "reward", r.Reward),
			trainRecord(roundStage(s, k), s, &k, "generator_sft", r.Generator))
	}
	if p.cfg.Synthesis.PerImage > 0 {
		var r RoundSummary
		if err := readJSON(filepath.Join(p.stageDir(seedStage(s, StageSynthesis)), SummaryFile), &r); err != nil {
			return nil, err
		}
		if res.Synthesis == nil {
			res.Synthesis = map[uint64]RoundSummary{}
		}
		res.Synthesis[s] = r
		metrics = append(metrics, MetricRecord{Stage: seedStage(s, StageSynthesis), Seed: s, Kind: "synthesis",
			Metrics: map[string]float64{"generated": float64(r.Generated), "parsed": float64(r.Parsed),
				"accepted": float64(r.Accepted), "accepted_true_accuracy": r.AcceptedTrue,
				"parsed_true_accuracy": r.ParsedTrue, "verified": float64(r.Verified), "verified_true_accuracy": r.VerifiedTrue,
				"accepted_coherent": r.AcceptedCoherent,
				"parsed_coherent":   r.ParsedCoherent, "mean_score": r.MeanScore}})
	}
	var base BaselineSummary
	if err := readJSON(filepath.Join(p.stageDir(seedStage(s, "baselines")), SummaryFile), &base); err != nil {
		return nil, err
	}
	add(base.Random, "random")
	add(base.Majority, "majority")
	for _, row := range []string{PolicySeed, PolicyUnfiltered, PolicyFiltered, PolicyGRPO} {
		var ps PolicySummary
		if err := readJSON(filepath.Join(p.stageDir(seedStage(s, row)), SummaryFile), &ps); err != nil {
			return nil, err
		}
		add(ps, row)
		if row == PolicyGRPO && ps.Probe != nil {
			probes.add(ProbePolicyRow, ps.Probe)
		}
		if ps.Train != nil {
			metrics = append(metrics, trainRecord(seedStage(s, row), s, nil, "train", *ps.Train))
		}
		for b, sum := range ps.Eval {
			metrics = append(metrics, MetricRecord{Stage: seedStage(s, row), Seed: s, Kind: "eval", Name: b,
				Metrics: map[string]float64{"accuracy": sum.Overall.Accuracy, "ci95_low": sum.Overall.Low,
					"ci95_high": sum.Overall.High, "n": float64(sum.Overall.N)}})
		}
	}
	return metrics, nil
}

// trainRecord turns a training call's stats into a metrics line.
func trainRecord(stage string, s uint64, round *int, name string, t TrainStats) MetricRecord {
	m := map[string]float64{"steps": float64(t.Steps)}
	for k, v := range t.Metrics {
		m[k] = v
	}
	return MetricRecord{Stage: stage, Seed: s, Round: round, Kind: "train", Name: name, Metrics: m}
}

// meanSensitivity averages image-use measurements field by field.
func meanSensitivity(ss []eval.Sensitivity) eval.Sensitivity {
	var m eval.Sensitivity
	for _, s := range ss {
		m.N += s.N
		m.MeanTV += s.MeanTV
		m.Changed += s.Changed
		m.Accuracy += s.Accuracy
		m.SwappedAccuracy += s.SwappedAccuracy
	}
	n := float64(len(ss))
	m.N /= len(ss)
	m.MeanTV, m.Changed, m.Accuracy, m.SwappedAccuracy = m.MeanTV/n, m.Changed/n, m.Accuracy/n, m.SwappedAccuracy/n
	return m
}

// describeFilter says in words which samples f accepts.
func describeFilter(f FilterConfig) string {
	var rule string
	switch {
	case f.TopK > 0:
		rule = fmt.Sprintf("top-%d", f.TopK)
	case f.TopFraction > 0:
		rule = fmt.Sprintf("top %g of parsed samples", f.TopFraction)
	default:
		rule = fmt.Sprintf("τ = %g", *f.Threshold)
	}
	return fmt.Sprintf("%s, max template share %g", rule, f.MaxTemplateShare)
}

// markdown renders the report.
func (p *Pipeline) markdown(res *Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# MedGR² pipeline report\n\nSeeds: %v. Rounds: %d. Seed fraction: %g. Filter: %s. Verify: %s.",
		res.Seeds, p.cfg.Rounds, p.cfg.SeedFraction, describeFilter(p.cfg.Filter), p.cfg.Verify)
	if syn := p.cfg.Synthesis; syn.PerImage > 0 {
		f := p.cfg.Filter
		if syn.Filter != nil {
			f = *syn.Filter
		}
		fmt.Fprintf(&b, " Synthesis: %d samples per pool image, filter %s.", syn.PerImage, describeFilter(f))
	}
	fmt.Fprintf(&b, " The filtered policies train on the accepted samples that pass verification. GRPO reward: %g·RM + %g·match + %g·format.\n",
		p.cfg.GRPO.RewardWeight, p.cfg.GRPO.MatchWeight, p.cfg.GRPO.FormatWeight)
	fmt.Fprintf(&b, "Held-out modalities: %s. Elapsed: %.1f s (first stage start to last finish); stage wall times summed: %.1f s.\n\n",
		strings.Join(res.Holdout, ", "), res.Elapsed, res.Total)
	b.WriteString(res.Markdown())
	b.WriteString("\n## Co-development rounds\n\n| seed | round | generated | parsed | accepted | acceptance | true acc. (accepted) | true acc. (all parsed) | verified | true acc. (verified) | coherent (accepted) | coherent (all parsed) | mean score | templates |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range res.Seeds {
		rows := res.Rounds[s]
		if syn, ok := res.Synthesis[s]; ok {
			rows = append(slices.Clone(rows), syn)
		}
		for _, r := range rows {
			round := fmt.Sprint(r.Round)
			if r.Round > p.cfg.Rounds {
				round = "synthesis"
			}
			fmt.Fprintf(&b, "| %d | %s | %d | %d | %d | %.1f%% | %.1f%% | %.1f%% | %d | %.1f%% | %.1f%% | %.1f%% | %.2f | %d |\n", s, round,
				r.Generated, r.Parsed, r.Accepted, 100*r.AcceptanceRate, 100*r.AcceptedTrue, 100*r.ParsedTrue,
				r.Verified, 100*r.VerifiedTrue, 100*r.AcceptedCoherent, 100*r.ParsedCoherent, r.MeanScore, r.Templates)
		}
	}
	if len(res.Synthesis) > 0 {
		b.WriteString("\nThe synthesis rows are the final generator's pass over the pool, scored and filtered by the final reward model; the unfiltered and filtered policies train on it (with the seed items).\n")
	}
	fmt.Fprintf(&b, "\nCurves: `%s`, `%s`. Metrics: `%s`.\n\n## Stage wall times\n\n| stage | seconds |\n|---|---|\n",
		CurveRounds, CurveLoss, MetricsFile)
	for _, name := range p.Stages() {
		if secs, ok := res.Stages[name]; ok {
			fmt.Fprintf(&b, "| %s | %.1f |\n", name, secs)
		}
		if name != StagePretrain {
			continue // the other stages are one part each
		}
		for _, part := range []string{PretrainPartVQA, PretrainPartEval} {
			if secs, ok := res.PretrainParts[part]; ok {
				fmt.Fprintf(&b, "| %s: %s | %.1f |\n", name, part, secs)
			}
		}
	}
	return b.String()
}

// Markdown renders the results of a run: accuracy per benchmark, image
// use, accuracy per modality, the targets and the paper's claims, each
// with its numbers. The run's report.md and the README's results section
// (from the exported RESULTS.json) both show this text.
func (res *Results) Markdown() string {
	var b strings.Builder
	b.WriteString("## Results (accuracy %, mean ± sd over seeds)\n\n")
	benches := []string{BenchTest, BenchHeldOut, BenchReal}
	b.WriteString("| system | " + strings.Join(benches, " | ") + " |\n|---|" + strings.Repeat("---|", len(benches)) + "\n")
	for _, row := range rowOrder {
		cells, ok := res.Table[row]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "| %s |", rowTitle[row])
		for _, bench := range benches {
			c, ok := cells[bench]
			if !ok {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&b, " %.1f ± %.1f (n=%d) |", 100*c.Mean, 100*c.Spread, c.N)
		}
		b.WriteString("\n")
	}
	if len(res.ImageUse) > 0 {
		b.WriteString("\n## Image use (test split)\n\nEach test item answered again with its image swapped for one of another modality: how far the answers move (mean total variation; 0 means the image is ignored), the share of predictions that change, and accuracy with own → swapped images; mean over seeds.\n\n| system | answers moved | predictions changed | accuracy own → swapped |\n|---|---|---|---|\n")
		for _, row := range rowOrder {
			if u, ok := res.ImageUse[row]; ok {
				fmt.Fprintf(&b, "| %s | %.3f | %.1f%% | %.1f%% → %.1f%% |\n", rowTitle[row], u.MeanTV, 100*u.Changed,
					100*u.Accuracy, 100*u.SwappedAccuracy)
			}
		}
	}
	b.WriteString(modalityTables(res))
	b.WriteString(questionTypeTables(res))
	b.WriteString(probeMarkdown(res.Probe))
	b.WriteString("\n## Targets\n\n")
	for _, line := range targets(res) {
		b.WriteString("- " + line + "\n")
	}
	b.WriteString("\n## Claims\n\n")
	for _, line := range claims(res) {
		b.WriteString("- " + line + "\n")
	}
	return b.String()
}

// claims checks the paper's three claims against the table, with numbers.
func claims(res *Results) []string {
	cell := func(row, bench string) (Cell, bool) { c, ok := res.Table[row][bench]; return c, ok }
	var out []string
	verdict := func(ok bool) string {
		if ok {
			return "holds"
		}
		return "DOES NOT hold"
	}
	for _, bench := range []string{BenchTest, BenchHeldOut, BenchReal} {
		f, ok1 := cell(PolicyFiltered, bench)
		u, ok2 := cell(PolicyUnfiltered, bench)
		g, ok3 := cell(PolicyGRPO, bench)
		if ok1 && ok2 {
			out = append(out, fmt.Sprintf("filtered > unfiltered on %s: %s (%.1f vs %.1f)%s", bench,
				verdict(f.Mean > u.Mean), 100*f.Mean, 100*u.Mean, noise(f, u)))
		}
		if ok1 && ok3 {
			out = append(out, fmt.Sprintf("GRPO adds accuracy on %s: %s (%+.1f points)%s", bench,
				verdict(g.Mean > f.Mean), 100*(g.Mean-f.Mean), noise(g, f)))
		}
	}
	var rounds, synth []RoundSummary
	for _, rs := range res.Rounds {
		rounds = append(rounds, rs...)
	}
	for _, r := range res.Synthesis {
		synth = append(synth, r)
	}
	for _, g := range []struct {
		claim string
		rs    []RoundSummary
	}{
		{"the reward filter raises the generated items' true accuracy", rounds},
		{"synthesis: the final reward model's filter raises the policy data's true accuracy", synth},
	} {
		var acc, accOK, parsed, parsedOK int
		for _, r := range g.rs {
			acc += r.Accepted
			accOK += int(math.Round(r.AcceptedTrue * float64(r.Accepted)))
			parsed += r.Parsed
			parsedOK += int(math.Round(r.ParsedTrue * float64(r.Parsed)))
		}
		if acc > 0 && parsed > 0 {
			a, p := float64(accOK)/float64(acc), float64(parsedOK)/float64(parsed)
			out = append(out, fmt.Sprintf("%s: %s (accepted %.1f%% of %d vs all parsed %.1f%% of %d)",
				g.claim, verdict(a > p), 100*a, acc, 100*p, parsed))
		}
	}
	seeds := slices.Sorted(func(yield func(uint64) bool) {
		for s := range res.Rounds {
			if !yield(s) {
				return
			}
		}
	})
	for _, s := range seeds {
		var rs []RoundSummary // rounds that accepted something
		for _, r := range res.Rounds[s] {
			if r.Accepted > 0 {
				rs = append(rs, r)
			}
		}
		if len(rs) < 2 {
			out = append(out, fmt.Sprintf("seed %d: accepted samples' true accuracy across rounds: not measurable (%d rounds accepted samples)", s, len(rs)))
			continue
		}
		first, last := rs[0], rs[len(rs)-1]
		out = append(out, fmt.Sprintf("seed %d: accepted samples' true accuracy rises across rounds: %s (round %d %.1f%% → round %d %.1f%%)",
			s, verdict(last.AcceptedTrue > first.AcceptedTrue), first.Round, 100*first.AcceptedTrue, last.Round, 100*last.AcceptedTrue))
	}
	return out
}

// noise flags a difference of means no larger than the seeds' spread
// (with one seed, than a 95% Wilson half-width of the smaller cell).
func noise(a, b Cell) string {
	d := math.Abs(a.Mean - b.Mean)
	tol := math.Max(a.Spread, b.Spread)
	if len(a.PerRun) < 2 && a.N > 0 {
		lo, hi := eval.Wilson(int(math.Round(a.Mean*float64(a.N))), a.N, eval.Z95)
		tol = (hi - lo) / 2
	}
	if d <= tol {
		return fmt.Sprintf(" — within noise (spread %.1f points)", 100*tol)
	}
	return ""
}

// writePNG encodes a chart to path, atomically.
func writePNG(path string, c chart) error {
	raw, err := c.png()
	if err != nil {
		return err
	}
	return writeAtomic(path, raw)
}

// lossChart draws the loss curves of the first seed's training calls.
func (p *Pipeline) lossChart() chart {
	c := chart{Title: "training loss (first seed)", XLabel: "step", YLabel: "loss"}
	s := p.cfg.Seeds[0]
	for _, row := range []string{PolicySeed, PolicyUnfiltered, PolicyFiltered, PolicyGRPO} {
		var ps PolicySummary
		if readJSON(filepath.Join(p.stageDir(seedStage(s, row)), SummaryFile), &ps) != nil || ps.Train == nil {
			continue
		}
		c.Series = append(c.Series, series{Name: row, Y: ps.Train.Curve})
	}
	var boot BootstrapSummary
	if readJSON(filepath.Join(p.stageDir(roundStage(s, 0)), SummaryFile), &boot) == nil {
		c.Series = append(c.Series, series{Name: "reward-0", Y: boot.Reward.Curve},
			series{Name: "generator-0", Y: boot.Generator.Curve})
	}
	return c
}

// roundsChart draws acceptance rate and accepted true accuracy per round.
func roundsChart(res *Results) chart {
	c := chart{Title: "co-development rounds", XLabel: "round", YLabel: "%", X0: 1}
	for _, s := range res.Seeds {
		var acc, rate []float64
		for _, r := range res.Rounds[s] {
			acc = append(acc, 100*r.AcceptedTrue)
			rate = append(rate, 100*r.AcceptanceRate)
		}
		c.Series = append(c.Series, series{Name: fmt.Sprintf("s%d accepted true acc", s), Y: acc},
			series{Name: fmt.Sprintf("s%d acceptance", s), Y: rate})
	}
	return c
}

// LoadResults reads a finished run's results.json.
func LoadResults(outDir string) (*Results, error) {
	raw, err := os.ReadFile(filepath.Join(outDir, ResultsFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	var r Results
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrData, ResultsFile, err)
	}
	return &r, nil
}
