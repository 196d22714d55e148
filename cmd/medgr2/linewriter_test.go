package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestLineWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"whole lines", []string{"a\n", "b\n"}, "a\nb\n"},
		{"line in pieces", []string{"ab", "c\n"}, "abc\n"},
		{"bar keeps its last state", []string{"\rstep 1/3", "\rstep 2/3", "\rstep 3/3\n"}, "step 3/3\n"},
		{"bar then line", []string{"\rgenerate 1/2\rgenerate 2/2", "\n", "done\n"}, "generate 2/2\ndone\n"},
		{"line between bar and its end", []string{"\rsft step 1/2", "[3/9] pretrain …\n", "\rsft step 2/2", "\n"},
			"[3/9] pretrain …\nsft step 2/2\n"},
		{"lone newline without bar", []string{"\n", "a\n"}, "a\n"},
		{"bar flushed", []string{"\rgrpo step 3"}, "grpo step 3\n"},
		{"unfinished line flushed", []string{"x\n", "tail"}, "x\ntail\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			lw := &lineWriter{w: &b}
			for _, w := range tc.writes {
				if n, err := lw.Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			lw.Flush()
			if b.String() != tc.want {
				t.Errorf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
}

// TestLineWriterConcurrent checks that whole lines written at once by
// several goroutines come out whole.
func TestLineWriterConcurrent(t *testing.T) {
	var b strings.Builder
	lw := &lineWriter{w: &b}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				fmt.Fprintf(lw, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d lines, want 200", len(lines))
	}
	for _, l := range lines {
		var g, i int
		if n, err := fmt.Sscanf(l, "g%d line %d", &g, &i); n != 2 || err != nil {
			t.Errorf("torn line %q", l)
		}
	}
}
