package main

import (
	"bytes"
	"io"
	"sync"
)

// lineWriter passes whole lines to w, one Write each, and keeps only the
// last state of an in-place progress bar: a Write that starts with a
// carriage return and ends no line ("\rstep 3/9 …") replaces the pending
// bar, a Write of a lone newline (how most bars end) writes it, and one
// that starts with a carriage return and ends a line is the bar's end. It is
// safe for concurrent use: lines written whole, one Write each, never
// tear, though when two bars are drawn at once the newline that ends one
// may write the other's last state.
type lineWriter struct {
	w    io.Writer
	mu   sync.Mutex
	bar  []byte // the last state of the bar being drawn
	line []byte // an unfinished line
}

// Write buffers p, writing each line it completes.
func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	switch {
	case len(p) > 0 && p[0] == '\r' && bytes.IndexByte(p, '\n') < 0:
		lw.bar = append(lw.bar[:0], p[bytes.LastIndexByte(p, '\r')+1:]...)
		return len(p), nil
	case string(p) == "\n" && len(lw.line) == 0:
		if len(lw.bar) == 0 {
			return len(p), nil
		}
		_, err := lw.w.Write(append(lw.bar, '\n'))
		lw.bar = lw.bar[:0]
		if err != nil {
			return 0, err
		}
		return len(p), nil
	case len(p) > 0 && p[0] == '\r':
		lw.bar = lw.bar[:0] // the bar's final state, ending its line
	}
	for _, c := range p {
		switch c {
		case '\r':
			lw.line = lw.line[:0]
		case '\n':
			lw.line = append(lw.line, '\n')
			_, err := lw.w.Write(lw.line)
			lw.line = lw.line[:0]
			if err != nil {
				return 0, err
			}
		default:
			lw.line = append(lw.line, c)
		}
	}
	return len(p), nil
}

// Flush writes a pending bar and an unfinished line, each ended with a
// newline.
func (lw *lineWriter) Flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, b := range []*[]byte{&lw.bar, &lw.line} {
		if len(*b) > 0 {
			_, _ = lw.w.Write(append(*b, '\n'))
			*b = (*b)[:0]
		}
	}
}
