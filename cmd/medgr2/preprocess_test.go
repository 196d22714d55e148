package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/preprocessing"
)

func TestPreprocessCommand(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"--frame", "1", "--window", "-600,1500", "--out", out, "../../preprocessing/testdata/ct_multiframe.dcm"}
	if err := runPreprocess(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var rep preprocessReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Info.Frame != 1 || rep.Info.WindowSource != preprocessing.WindowFromOptions || rep.GridTHW != [3]int64{1, 10, 10} || rep.ImageTokens != 25 {
		t.Errorf("report %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(out, "ct_multiframe.png")); err != nil {
		t.Error(err)
	}
}

func TestPreprocessCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"no files", nil, usageError("")},
		{"bad window", []string{"--window", "40", "x.png"}, usageError("")},
		{"frame out of range", []string{"--frame", "9", "../../preprocessing/testdata/ct_multiframe.dcm"}, preprocessing.ErrFrame},
		{"too large", []string{"--max-bytes", "10", "../../preprocessing/testdata/deflated.dcm"}, preprocessing.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runPreprocess(context.Background(), tt.args, &stdout, &stderr)
			var u usageError
			if _, isUsage := tt.want.(usageError); isUsage {
				if !errors.As(err, &u) {
					t.Fatalf("error %v, want usage error", err)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}
