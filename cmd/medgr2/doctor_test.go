package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/runtime"
)

func TestDoctor(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     []string // substrings of stdout
		sentinel error    // nil: success
	}{
		{"cpu", []string{"--device", "cpu"}, []string{"onnxruntime version: 1.", "CPUExecutionProvider", "device cpu: cpu"}, nil},
		{"auto falls back", nil, []string{"device auto: cpu"}, nil},
		{"cuda unavailable", []string{"--device", "cuda:0"}, []string{"device cuda:0: FAIL"}, runtime.ErrCUDAUnavailable},
		{"missing library", []string{"--ort-lib", filepath.Join(t.TempDir(), "libonnxruntime.so.1")}, []string{"onnxruntime: FAIL"}, runtime.ErrLibraryNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			err := run(context.Background(), append([]string{"doctor"}, tt.args...), &out, &errw)
			if tt.sentinel == nil && err != nil {
				t.Fatalf("err = %v\n%s", err, errw.String())
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			if tt.sentinel != nil && exitCode(err) == 0 {
				t.Fatal("exit code 0 on failure")
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"doctor", "--device", "tpu"}, &out, &out); exitCode(err) != 2 {
		t.Fatalf("bad device: err = %v, exit %d", err, exitCode(err))
	}
}
