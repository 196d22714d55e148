package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/medgr2/medgr2/models"
)

func TestServeBadFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  error
	}{
		{"no models", []string{}, true, nil},
		{"extra argument", []string{"--fake-models", "x"}, true, nil},
		{"missing bundle", []string{"--model", "/nonexistent/bundle"}, false, models.ErrMissingFile},
		{"fakes and bundles", []string{"--fake-models", "--model", "/tmp/bundle"}, true, nil},
		{"bad device", []string{"--model", "/tmp/bundle", "--device", "tpu"}, true, nil},
		{"bad redis url", []string{"--fake-models", "--redis", "ftp://x"}, true, nil},
		{"unknown flag", []string{"--nope"}, false, nil},
		{"zero job ttl", []string{"--fake-models", "--job-ttl", "0s"}, true, nil},
		{"negative claim idle", []string{"--fake-models", "--claim-idle", "-1s"}, true, nil},
		{"negative workers", []string{"--fake-models", "--workers", "-1"}, true, nil},
		{"negative merge", []string{"--fake-models", "--merge-buckets", "-1"}, true, nil},
		{"negative threads", []string{"--fake-models", "--threads", "-2"}, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := runServe(context.Background(), append(tc.args, "--out", t.TempDir()), io.Discard, io.Discard)
			var u usageError
			if err == nil || (tc.usage && !errors.As(err, &u)) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestServeRunsAndStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var logs bytes.Buffer
	err := runServe(ctx, []string{"--fake-models", "--addr", "127.0.0.1:0", "--drain", "1s", "--out", t.TempDir()}, io.Discard, &logs)
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	if !bytes.Contains(logs.Bytes(), []byte("authentication is OFF")) || !bytes.Contains(logs.Bytes(), []byte("shutting down")) {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// TestServeRealBundle serves a random VQA bundle through backend.Open
// until the context ends.
func TestServeRealBundle(t *testing.T) {
	dir := testBundle(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var logs bytes.Buffer
	err := runServe(ctx, []string{"--model", dir, "--device", "cpu", "--threads", "1", "--addr", "127.0.0.1:0", "--drain", "1s", "--out", t.TempDir()}, io.Discard, &logs)
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	for _, want := range []string{"bundle loaded", "listening", "shutting down"} {
		if !bytes.Contains(logs.Bytes(), []byte(want)) {
			t.Fatalf("logs lack %q:\n%s", want, logs.String())
		}
	}
	if bytes.Contains(logs.Bytes(), []byte("warm-up failed")) {
		t.Fatalf("warm-up failed:\n%s", logs.String())
	}
}

// TestServeWorkersDefault checks --workers defaults to one per core and
// keeps an explicit count.
func TestServeWorkersDefault(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"--fake-models"}, goruntime.GOMAXPROCS(0)},
		{[]string{"--fake-models", "--workers", "3"}, 3},
	} {
		f, err := parseServeFlags(tt.args, io.Discard)
		if err != nil || f.workers != tt.want {
			t.Errorf("%v: workers %d, %v; want %d", tt.args, f.workers, err, tt.want)
		}
	}
}
