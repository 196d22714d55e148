package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDiagProbeUsage checks the probe and ssl diagnostics' help, required
// flags and bad input.
func TestDiagProbeUsage(t *testing.T) {
	cases := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"diag", "-h"}, 0, "probe"},
		{[]string{"diag", "probe", "-h"}, 0, "-collections"},
		{[]string{"diag", "ssl", "-h"}, 0, "-holdout"},
		{[]string{"diag", "ssl"}, 2, "--out is required"},
		{[]string{"diag", "probe", "--model", "missing-bundle"}, 1, "missing-bundle"},
		{[]string{"diag", "probe", "--model", "../../models/default/vqa", "--data", "../../../shared/data", "--collections", "nope"}, 1, "nope"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			code, msg := 0, ""
			if err != nil {
				code, msg = exitCode(err), err.Error()
			}
			if code != tc.wantCode {
				t.Fatalf("exit status %d (err %v), want %d", code, err, tc.wantCode)
			}
			if !strings.Contains(stdout.String()+stderr.String()+msg, tc.want) {
				t.Errorf("output lacks %q:\n%s%s%s", tc.want, stdout.String(), stderr.String(), msg)
			}
		})
	}
}

// TestDiagProbeTable runs the probe of the shipped bundle on one
// collection and checks the table's rows.
func TestDiagProbeTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"diag", "probe", "--model", "../../models/default/vqa",
		"--data", "../../../shared/data", "--collections", "mednist-ct", "--limit", "20", "--threads", "1"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"raw pixels", "encoder", "mednist-ct", "mean"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
