package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/medgr2/medgr2/bench"
)

// benchData is the shared data folder from this package's directory.
var benchData = filepath.Join("..", "..", "..", "shared", "data")

// checkRecord decodes `bench --json` suite output and checks every run.
func checkRecord(t *testing.T, out []byte) benchRecord {
	t.Helper()
	var got benchRecord
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Suite.Ratios.SaturationVsRaw <= 0 || got.Suite.Ratios.BatchingGain <= 0 {
		t.Fatalf("suite ratios %+v", got.Suite.Ratios)
	}
	for _, r := range got.Suite.Reports() {
		if r.Errors != 0 || r.Items == 0 || r.CPU.Cores < 1 {
			t.Fatalf("run %q: %+v", r.Name, r)
		}
	}
	if !strings.HasPrefix(got.Command, "medgr2 bench ") || got.Date.IsZero() || got.Cores < 1 || got.Workers < 1 {
		t.Fatalf("record %+v", got)
	}
	return got
}

func TestBenchSuiteFake(t *testing.T) {
	var out bytes.Buffer
	err := runBench(context.Background(), []string{"--json", "--model", "fake", "--data", benchData, "--mix", "10", "--max-requests", "40",
		"--max-batch", "4", "--workers", "2", "--fake-batch-cost", "2ms", "--fake-item-cost", "100us", "--duration", "10s"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := checkRecord(t, out.Bytes())
	s := got.Suite
	if s.Raw.BatchSize != 4 || s.Raw.Clients != 2 || s.Saturation.Clients != 16 || s.Clients32.Clients != 32 || s.LowLoad.Clients != 1 {
		t.Fatalf("suite %+v", s)
	}
	if got.Sources["knee"] != 2 || got.Sources["bccd"] != 2 || len(got.Sources) != 5 {
		t.Fatalf("mix sources %v", got.Sources)
	}
	if len(s.Rounds) != 3 {
		t.Errorf("%d rounds of ratios, want the default 3", len(s.Rounds))
	}
	out.Reset()
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	err = runBench(context.Background(), []string{"--model", "fake", "--data", benchData, "--mix", "5", "--max-requests", "8", "--max-batch", "2",
		"--fake-batch-cost", "1ms", "--fake-item-cost", "10us", "--rounds", "1", "--cpuprofile", prof}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("cpu profile: %v", err)
	}
	for _, want := range []string{"raw serial", "server saturation", "batching gain, 32 clients vs 1", "p95 ms", "padding"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchSuiteDefaultBundle runs the suite on the default VQA bundle
// and a small real mix, briefly, and checks the record it writes: every
// run answered, the server's padding counters and per-request timing
// read, and a chart.
func TestBenchSuiteDefaultBundle(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := runBench(context.Background(), []string{"--json", "--model", filepath.Join(defaultModels, "vqa"), "--device", "cpu",
		"--data", benchData, "--mix", "5", "--max-requests", "10", "--max-batch", "4", "--duration", "3s", "--out", dir}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := checkRecord(t, out.Bytes())
	if p := got.Suite.Raw.Padding; p.PromptTokens <= 0 || got.Suite.RawSerial.Padding.PaddingTokens != 0 {
		t.Errorf("raw padding %+v, serial %+v", p, got.Suite.RawSerial.Padding)
	}
	for _, r := range []bench.Report{got.Suite.LowLoad, got.Suite.Clients32, got.Suite.Saturation} {
		if r.Padding.PromptTokens <= 0 || r.Stages.Responses != r.Items || r.Stages.ModelMS <= 0 {
			t.Errorf("run %q: padding %+v stages %+v", r.Name, r.Padding, r.Stages)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, benchJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if saved := checkRecord(t, raw); saved.Suite.Ratios != got.Suite.Ratios {
		t.Errorf("%s ratios %+v, printed %+v", benchJSONFile, saved.Suite.Ratios, got.Suite.Ratios)
	}
	f, err := os.Open(filepath.Join(dir, benchPNGFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("%s: %v", benchPNGFile, err)
	}
}

func TestBenchURL(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer ts.Close()
	var out bytes.Buffer
	if err := runBench(context.Background(), []string{"--json", "--url", ts.URL, "--data", benchData, "--mix", "3",
		"--max-requests", "6", "--clients", "1"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Requests != 6 || rep.Name != "server" {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(bodies) != 6 || bodies[0] == bodies[1] || bodies[0] != bodies[3] || !strings.Contains(bodies[2], "Is there pneumonia?") {
		t.Fatalf("bodies sent: %d, want the 3 of the mix twice in order", len(bodies))
	}
}

func TestBenchErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		want   error
		substr string
	}{
		{"remote target", []string{"--url", "http://192.0.2.1:8080", "--data", benchData, "--mix", "1"}, bench.ErrNotLoopback, ""},
		{"count given as --requests", []string{"--requests", "64"}, nil, "--max-requests"},
		{"missing mix file", []string{"--requests", "nope.jsonl"}, fs.ErrNotExist, "nope.jsonl"},
		{"no data", []string{"--data", "nowhere", "--model", "fake"}, fs.ErrNotExist, "nowhere"},
		{"bad workers", []string{"--workers", "-1"}, nil, "--workers"},
		{"no rounds", []string{"--rounds", "0"}, nil, "--rounds"},
		{"negative merge", []string{"--merge-buckets", "-1"}, nil, "--merge-buckets"},
		{"profile in a missing folder", []string{"--model", "fake", "--data", benchData, "--mix", "1",
			"--cpuprofile", filepath.Join("no", "such", "dir", "cpu.pprof")}, fs.ErrNotExist, "cpu profile"},
		{"random without tokenizer", []string{"--model", "random", "--tokenizer", "nope.json", "--data", benchData, "--mix", "1"}, nil, "nope.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := runBench(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("err %v, want %v mentioning %q", err, tc.want, tc.substr)
			}
		})
	}
}

// TestRawBatches checks that the raw baseline's batches are those the
// server's batcher forms with the whole mix queued (batch.Plan): by length
// bucket, fullest first, at most maxBatch at a time, with shorter buckets
// merged when asked; and the mix in order without lengths.
func TestRawBatches(t *testing.T) {
	// 100, 101 and 105 share a bucket (batch.LengthKey 20); 300 (25) and
	// 60 (18, two buckets below) do not.
	lengths := []int{100, 300, 101, 60, 100, 300, 105}
	tests := []struct {
		lengths         []int
		n, batch, merge int
		want            string
	}{
		{lengths, 7, 2, 0, "[[0 2] [1 5] [3] [4 6]]"},
		{lengths, 7, 16, 0, "[[0 2 4 6] [1 5] [3]]"},
		{lengths, 7, 16, 1, "[[0 2 4 6] [1 5] [3]]"},
		{lengths, 7, 16, 2, "[[0 2 4 6 3] [1 5]]"},
		{lengths, 7, 16, -1, "[[0 2 4 6] [1 5] [3]]"},
		{nil, 5, 2, 1, "[[0 1] [2 3] [4]]"},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(rawBatches(tc.lengths, tc.n, tc.batch, tc.merge)); got != tc.want {
			t.Errorf("rawBatches(%v, %d, %d, %d) = %s, want %s", tc.lengths, tc.n, tc.batch, tc.merge, got, tc.want)
		}
	}
}

func TestParseMachineCPU(t *testing.T) {
	tests := []struct {
		line        string
		busy, total uint64
		err         bool
	}{
		{"cpu  501195 0 207934 116828 1413 0 2328 0 0 0\n", 501195 + 207934 + 2328, 501195 + 207934 + 116828 + 1413 + 2328, false},
		{"cpu 1 2 3 4 5", 6, 15, false},
		{"cpu0 1 2 3 4 5", 0, 0, true},
		{"cpu 1 2 x 4 5", 0, 0, true},
		{"cpu 1 2", 0, 0, true},
	}
	for _, tc := range tests {
		m, err := parseMachineCPU(tc.line)
		if (err != nil) != tc.err || m.busy != tc.busy || m.total != tc.total {
			t.Errorf("parseMachineCPU(%q) = %+v, %v", tc.line, m, err)
		}
	}
	if _, err := readMachineCPU(); err != nil {
		t.Fatal(err) // Linux: the machine's own /proc/stat parses
	}
}
