package eval

import (
	"fmt"
	"io"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v2"
)

// Plain progress lines (when Options.Progress is not a terminal) are
// written every lineStep of the items and at least every lineInterval.
const (
	lineStep     = 0.10
	lineInterval = 10 * time.Second
)

// progress reports how many items Evaluate has answered.
type progress interface {
	add(n int)
	finish()
}

// newProgress returns a progress bar when w is a terminal, plain periodic
// lines (lineProgress) when it is another writer, such as a log file or a
// pipe, where a bar's carriage returns would flood the log, and nothing
// when w is nil.
func newProgress(w io.Writer, total int, desc string) progress {
	switch {
	case w == nil:
		return noProgress{}
	case isTerminal(w):
		return barProgress{w: w, bar: progressbar.NewOptions(total, progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetPredictTime(true))}
	default:
		return newLineProgress(w, total, desc, time.Now)
	}
}

// isTerminal reports whether w is a file open on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

type noProgress struct{}

func (noProgress) add(int) {}
func (noProgress) finish() {}

// barProgress is a progress bar redrawn in place.
type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (b barProgress) add(n int) { _ = b.bar.Add(n) }
func (b barProgress) finish()   { _ = b.bar.Finish(); fmt.Fprintln(b.w) }

// lineProgress writes one plain line each time another lineStep of the
// items is done or lineInterval has passed since the last line, and a
// last line when done.
type lineProgress struct {
	w        io.Writer
	total    int
	desc     string
	now      func() time.Time // the clock; time.Now outside tests
	start    time.Time        // when the run began
	last     time.Time        // when the last line was written
	done     int              // items done
	nextStep int              // items at which the next step line is due
}

func newLineProgress(w io.Writer, total int, desc string, now func() time.Time) *lineProgress {
	t := now()
	p := &lineProgress{w: w, total: total, desc: desc, now: now, start: t, last: t}
	p.nextStep = p.stepAfter(0)
	return p
}

// stepAfter returns the first step boundary above done.
func (p *lineProgress) stepAfter(done int) int {
	step := max(1, int(lineStep*float64(p.total)))
	return (done/step + 1) * step
}

func (p *lineProgress) add(n int) {
	p.done += n
	t := p.now()
	if p.done >= p.total || (p.done < p.nextStep && t.Sub(p.last) < lineInterval) {
		return // the last line is finish's
	}
	p.nextStep, p.last = p.stepAfter(p.done), t
	p.line(t, "")
}

func (p *lineProgress) finish() { p.line(p.now(), ", done") }

// line writes "desc: done/total (pct%), rate items/s, elapsed".
func (p *lineProgress) line(t time.Time, suffix string) {
	el := t.Sub(p.start)
	rate := 0.0
	if el > 0 {
		rate = float64(p.done) / el.Seconds()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	fmt.Fprintf(p.w, "%s: %d/%d (%.0f%%), %.1f items/s, %s elapsed%s\n", p.desc, p.done, p.total, pct, rate, el.Round(time.Second), suffix)
}
