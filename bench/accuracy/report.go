package accuracy

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/medgr2/medgr2/data/eval"
)

// Row is one evaluated system on one benchmark.
type Row struct {
	Name      string       `json:"name"`      // the system: a model, "random", "majority"…
	Benchmark string       `json:"benchmark"` // the item set, e.g. "built test split"
	Summary   eval.Summary `json:"summary"`
}

// Report collects rows and renders them as a text table, JSON and a PNG
// bar chart.
type Report struct {
	Title string   `json:"title"`
	Notes []string `json:"notes,omitempty"` // how the rows were made (item selection, baselines' sources), printed under the title
	Rows  []Row    `json:"rows"`
}

// Add appends a row.
func (r *Report) Add(name, benchmark string, s eval.Summary) {
	r.Rows = append(r.Rows, Row{Name: name, Benchmark: benchmark, Summary: s})
}

// File names Save writes.
const (
	FileTable = "accuracy.txt"
	FileJSON  = "accuracy.json"
	FilePNG   = "accuracy.png"
)

// WriteTable prints an overall table (one line per row: accuracy, 95%
// interval, n, unparsed) followed by the breakdowns by modality and
// question type of every row.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if r.Title != "" {
		fmt.Fprintf(tw, "%s\n\n", r.Title)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note: %s\n", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "system\tbenchmark\taccuracy\t95% CI\tn\tunparsed")
	for _, row := range r.Rows {
		writeScore(tw, row.Name, row.Benchmark, row.Summary.Overall)
	}
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "\n%s on %s\tgroup\taccuracy\t95%% CI\tn\tunparsed\n", row.Name, row.Benchmark)
		for _, s := range row.Summary.ByModality {
			writeScore(tw, "  modality", s.Group, s)
		}
		for _, s := range row.Summary.ByQuestionType {
			writeScore(tw, "  question type", s.Group, s)
		}
	}
	return tw.Flush()
}

func writeScore(w io.Writer, a, b string, s eval.Score) {
	fmt.Fprintf(w, "%s\t%s\t%.1f%%\t[%.1f, %.1f]\t%d\t%d\n", a, b, 100*s.Accuracy, 100*s.Low, 100*s.High, s.N, s.Unparsed)
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Save writes accuracy.txt, accuracy.json and accuracy.png into dir,
// creating it if needed.
func (r Report) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("accuracy: %w", err)
	}
	writers := []struct {
		name  string
		write func(io.Writer) error
	}{{FileTable, r.WriteTable}, {FileJSON, r.WriteJSON}, {FilePNG, r.WritePNG}}
	for _, x := range writers {
		if err := writeFile(filepath.Join(dir, x.name), x.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("accuracy: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("accuracy: %w", cerr)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("accuracy: write %s: %w", path, err)
	}
	return nil
}
