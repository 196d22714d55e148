package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestTrainHelp checks that asking `train` or an objective for help prints
// it and succeeds (exit status 0), and that a bad flag is a usage error
// (exit status 2).
func TestTrainHelp(t *testing.T) {
	cases := []struct {
		args     []string
		wantCode int
		want     string // in stdout or stderr
	}{
		{[]string{"train", "--help"}, 0, "objectives:"},
		{[]string{"train", "-h"}, 0, "objectives:"},
		{[]string{"train", "help"}, 0, "objectives:"},
		{[]string{"train", "sft", "-h"}, 0, "-bundle"},
		{[]string{"train", "reward", "--help"}, 0, "-rank_weight"},
		{[]string{"train", "grpo", "-h"}, 0, "-group"},
		{[]string{"train", "sft", "--no-such-flag"}, 2, "no-such-flag"},
		{[]string{"train", "grpo", "--no-such-flag"}, 2, "no-such-flag"},
		{[]string{"train", "nope"}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			if code != tc.wantCode {
				t.Fatalf("exit status %d (err %v), want %d", code, err, tc.wantCode)
			}
			if !strings.Contains(stdout.String()+stderr.String(), tc.want) {
				t.Errorf("output lacks %q:\n%s%s", tc.want, stdout.String(), stderr.String())
			}
		})
	}
}
