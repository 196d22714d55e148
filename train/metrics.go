package train

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Record is one line of metrics.jsonl: "step" and the step's metrics,
// named as TRL names them where TRL has the metric.
type Record map[string]float64

// Recorder writes records as JSONL, draws a progress bar and keeps the
// history for the curves.
type Recorder struct {
	jsonl    io.Writer // metrics.jsonl; nil skips
	progress io.Writer // progress bar; nil skips
	total    int
	start    time.Time
	History  []Record
}

// NewRecorder returns a recorder for a run of total steps.
func NewRecorder(jsonl, progress io.Writer, total int) *Recorder {
	return &Recorder{jsonl: jsonl, progress: progress, total: total, start: time.Now()}
}

// Add records r (which must hold "step").
func (rc *Recorder) Add(r Record) error {
	rc.History = append(rc.History, r)
	if rc.jsonl != nil {
		clean := Record{}
		for k, v := range r {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				clean[k] = v
			}
		}
		js, err := json.Marshal(clean)
		if err != nil {
			return fmt.Errorf("train: metrics: %w", err)
		}
		if _, err := rc.jsonl.Write(append(js, '\n')); err != nil {
			return fmt.Errorf("train: metrics: %w", err)
		}
	}
	if rc.progress != nil {
		rc.bar(r)
	}
	return nil
}

// bar draws "step 12/100 [=====>    ] 0:42 loss 1.2345 …" on one line.
func (rc *Recorder) bar(r Record) {
	const width = 24
	step := int(r["step"])
	done := 0
	if rc.total > 0 {
		done = min(width, step*width/rc.total)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\rstep %d/%d [%s%s] %s", step, rc.total, strings.Repeat("=", done), strings.Repeat(" ", width-done),
		time.Since(rc.start).Round(time.Second))
	for _, k := range []string{"loss", "reward", "token_accuracy"} {
		if v, ok := r[k]; ok {
			fmt.Fprintf(&b, " %s %.4f", k, v)
		}
	}
	if step >= rc.total {
		b.WriteString("\n")
	}
	_, _ = io.WriteString(rc.progress, b.String())
}

// Keys returns the metric names seen, sorted.
func (rc *Recorder) Keys() []string {
	seen := map[string]bool{}
	for _, r := range rc.History {
		for k := range r {
			seen[k] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Series returns (step, value) pairs of metric key.
func (rc *Recorder) Series(key string) (xs, ys []float64) {
	for _, r := range rc.History {
		if v, ok := r[key]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs, ys = append(xs, r["step"]), append(ys, v)
		}
	}
	return xs, ys
}
