package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/medgr2/medgr2/internal/atomicfile"
	"github.com/medgr2/medgr2/internal/dircopy"
)

// DefaultRoles are the folders ExportDefaults writes, one bundle each.
var DefaultRoles = []Role{RoleVQA, RoleGenerator, RoleReward}

// ProvenanceFile records, beside the exported default bundles, which run
// and command produced them.
const ProvenanceFile = "PROVENANCE.json"

// Files ExportDefaults copies from the run beside the bundles: the run's
// results (every row, benchmark and modality over all seeds) and its
// report, so the numbers documented for the bundles come from them.
const (
	DefaultsResultsFile = "RESULTS.json"
	DefaultsReportFile  = "REPORT.md"
)

// Provenance is the content of ProvenanceFile.
type Provenance struct {
	Command  string             `json:"command"`  // the command line that ran the pipeline
	Seed     uint64             `json:"seed"`     // the run seed whose bundles were exported (the first)
	Stages   map[Role]string    `json:"stages"`   // role → stage the bundle comes from
	Hashes   map[Role]string    `json:"hashes"`   // role → that stage's hash
	Accuracy map[string]float64 `json:"accuracy"` // the VQA bundle's accuracy per benchmark
	Exported time.Time          `json:"exported"`
}

// ExportDefaults copies the first seed's final bundles of a finished run
// into dst/vqa (the policy after GRPO), dst/generator and dst/reward (the
// last round's models), replacing what was there, and writes
// dst/PROVENANCE.json, with the run's results.json and report.md as
// dst/RESULTS.json and dst/REPORT.md (run the report stage first). The first seed is taken, not the best one, so the
// choice does not look at test accuracy.
func (p *Pipeline) ExportDefaults(dst, command string) error {
	st, err := loadState(filepath.Join(p.cfg.OutDir, StateFile))
	if err != nil {
		return err
	}
	s := p.cfg.Seeds[0]
	src := map[Role]string{
		RoleVQA:       seedStage(s, PolicyGRPO),
		RoleGenerator: roundStage(s, p.cfg.Rounds),
		RoleReward:    roundStage(s, p.cfg.Rounds),
	}
	sub := map[Role]string{RoleVQA: dirBundle, RoleGenerator: dirGenerator, RoleReward: dirReward}
	prov := Provenance{Command: command, Seed: s, Stages: src, Hashes: map[Role]string{},
		Accuracy: map[string]float64{}, Exported: p.now().UTC()}
	for _, r := range DefaultRoles {
		rec, ok := st.Stages[src[r]]
		if !ok || rec.Hash != p.hashes[src[r]] {
			return fmt.Errorf("%w: stage %s is not finished with the current config; run the pipeline first", ErrData, src[r])
		}
		prov.Hashes[r] = rec.Hash
		to := filepath.Join(dst, string(r))
		if err := os.RemoveAll(to); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
		if err := dircopy.Copy(filepath.Join(p.stageDir(src[r]), sub[r]), to); err != nil {
			return fmt.Errorf("pipeline: export %s: %w", r, err)
		}
	}
	var ps PolicySummary
	if err := readJSON(filepath.Join(p.stageDir(src[RoleVQA]), SummaryFile), &ps); err != nil {
		return err
	}
	for b, sum := range ps.Eval {
		prov.Accuracy[b] = sum.Overall.Accuracy
	}
	for from, to := range map[string]string{ResultsFile: DefaultsResultsFile, ReportFile: DefaultsReportFile} {
		body, err := os.ReadFile(filepath.Join(p.cfg.OutDir, from))
		if err != nil {
			return fmt.Errorf("%w: the run's %s (run the report stage first): %w", ErrData, from, err)
		}
		if err := atomicfile.Write(filepath.Join(dst, to), body); err != nil {
			return fmt.Errorf("pipeline: export %s: %w", to, err)
		}
	}
	return writeJSON(filepath.Join(dst, ProvenanceFile), prov)
}
