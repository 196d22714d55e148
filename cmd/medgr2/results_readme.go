package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/medgr2/medgr2/pipeline"
)

// The README's results section lies between these lines; it is rendered
// from the default bundles' RESULTS.json and PROVENANCE.json, which
// `medgr2 pipeline --defaults` exports from the run.
const (
	resultsReadmeBegin = "<!-- BEGIN generated from models/default/RESULTS.json and PROVENANCE.json (`medgr2 pipeline --defaults`); do not edit -->"
	resultsReadmeEnd   = "<!-- END generated results -->"
)

// resultsSection renders the README's results from the defaults folder
// dir: the command and seeds of the run the bundles come from, its stage
// time, and the run's own results text (pipeline.Results.Markdown) with
// its headings one level down.
func resultsSection(dir string) (string, error) {
	var prov pipeline.Provenance
	if err := readJSONFile(filepath.Join(dir, pipeline.ProvenanceFile), &prov); err != nil {
		return "", err
	}
	var res pipeline.Results
	if err := readJSONFile(filepath.Join(dir, pipeline.DefaultsResultsFile), &res); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From the run the default bundles come from (exported %s):\n\n    %s\n\n",
		prov.Exported.Format("2006-01-02"), prov.Command)
	took := fmt.Sprintf("stage wall time %.1f min in all", res.Total/60)
	if res.Elapsed > 0 {
		took = fmt.Sprintf("%.1f min elapsed (stage wall times summed: %.1f min)", res.Elapsed/60, res.Total/60)
	}
	fmt.Fprintf(&b, "Seeds %v, held-out modalities %s, %s on the machine that ran it. "+
		"`models/default/%s` is the whole report; `vqa/` is seed %d's policy after GRPO.\n\n",
		res.Seeds, strings.Join(res.Holdout, ", "), took, pipeline.DefaultsReportFile, prov.Seed)
	for _, line := range strings.SplitAfter(res.Markdown(), "\n") {
		if strings.HasPrefix(line, "#") {
			line = "#" + line
		}
		b.WriteString(line)
	}
	return b.String(), nil
}

// renderResultsReadme returns the README at readme with its results
// section rendered from the defaults folder dir.
func renderResultsReadme(readme, dir string) ([]byte, error) {
	section, err := resultsSection(dir)
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile(readme)
	if err != nil {
		return nil, fmt.Errorf("results README: %w", err)
	}
	out, err := replaceBetween(text, resultsReadmeBegin, resultsReadmeEnd, section)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", readme, err)
	}
	return out, nil
}

// updateResultsReadme rewrites the results section of the README at
// readme from the defaults folder dir.
func updateResultsReadme(readme, dir string) error {
	out, err := renderResultsReadme(readme, dir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(readme, out, 0o644); err != nil {
		return fmt.Errorf("results README: %w", err)
	}
	return nil
}
