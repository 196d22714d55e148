package eval

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/medgr2/medgr2/data"
)

// fakeClock advances by step each time it is read.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestLineProgress(t *testing.T) {
	tests := []struct {
		name     string
		total    int
		batch    int
		tick     time.Duration // clock advance per read
		want     int           // lines written
		wantLast string
	}{
		{"every 10%", 1000, 10, time.Millisecond, 10, "1000/1000 (100%)"},
		{"batches larger than a step", 1000, 250, time.Millisecond, 4, "1000/1000 (100%)"},
		{"slow items: every 10 s", 20, 1, 11 * time.Second, 20, "20/20 (100%)"},
		{"fewer items than steps", 3, 1, time.Millisecond, 3, "3/3 (100%)"},
		{"no items", 0, 1, time.Millisecond, 1, "0/0 (100%)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			clk := &fakeClock{t: time.Unix(0, 0), step: tc.tick}
			p := newLineProgress(&buf, tc.total, "eval", clk.now)
			for done := 0; done < tc.total; done += tc.batch {
				p.add(min(tc.batch, tc.total-done))
			}
			p.finish()
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != tc.want || !strings.Contains(lines[len(lines)-1], tc.wantLast) || !strings.HasSuffix(lines[len(lines)-1], ", done") {
				t.Fatalf("%d lines, want %d ending in %q:\n%s", len(lines), tc.want, tc.wantLast, buf.String())
			}
			if strings.Contains(buf.String(), "\r") {
				t.Fatalf("carriage return in plain progress: %q", buf.String())
			}
		})
	}
}

// TestEvaluateProgressNotATerminal checks that Evaluate writes a few plain
// lines, not a redrawn bar, to a writer that is not a terminal.
func TestEvaluateProgressNotATerminal(t *testing.T) {
	var items []data.Item
	for i := range 500 {
		it := fixture()[0]
		it.QuestionID = fmt.Sprint("q", i)
		items = append(items, it)
	}
	f, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Evaluate(context.Background(), Random{Seed: 1}, items, Options{BatchSize: 5, Progress: f, Description: "random"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := log.ReadFrom(f); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "\n"); n > 11 || strings.Contains(log.String(), "\r") {
		t.Fatalf("%d lines written to a file:\n%q", n, log.String())
	}
}
