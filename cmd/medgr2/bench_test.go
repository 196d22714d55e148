package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/bench"
)

// checkSuite decodes `bench --json` suite output and checks every run.
func checkSuite(t *testing.T, out []byte) bench.SuiteResult {
	t.Helper()
	var got bench.SuiteResult
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Ratios.SaturationVsRaw <= 0 || got.Ratios.BatchingGain <= 0 {
		t.Fatalf("suite ratios %+v", got.Ratios)
	}
	for _, r := range got.Reports() {
		if r.Errors != 0 || r.Items == 0 {
			t.Fatalf("run %q: %+v", r.Name, r)
		}
	}
	return got
}

func TestBenchSuite(t *testing.T) {
	var out bytes.Buffer
	err := runBench(context.Background(), []string{"--json", "--requests", "64", "--max-batch", "4",
		"--fake-batch-cost", "2ms", "--fake-item-cost", "100us", "--duration", "10s"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := checkSuite(t, out.Bytes())
	if got.Raw.BatchSize != 4 || got.Saturation.Clients != 8 || got.Clients32.Clients != 32 {
		t.Fatalf("suite %+v", got)
	}
	out.Reset()
	err = runBench(context.Background(), []string{"--requests", "8", "--max-batch", "2",
		"--fake-batch-cost", "1ms", "--fake-item-cost", "10us"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"raw serial", "server saturation", "batching gain"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchSuiteRealModel runs the suite on a random default-size bundle:
// the raw baseline and the server run the same backend.
func TestBenchSuiteRealModel(t *testing.T) {
	var out bytes.Buffer
	err := runBench(context.Background(), []string{"--json", "--model", "random", "--device", "cpu", "--threads", "1",
		"--tokenizer", "../../models/testdata/vqa_tokenizer.json", "--requests", "16", "--max-batch", "4", "--duration", "20s"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checkSuite(t, out.Bytes())
	err = runBench(context.Background(), []string{"--model", "random", "--tokenizer", "nope.json"}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("missing tokenizer: no error")
	}
}

func TestBenchURL(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	var out bytes.Buffer
	if err := runBench(context.Background(), []string{"--json", "--url", ts.URL, "--requests", "10", "--clients", "2"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Requests != 10 || rep.Name != "server" {
		t.Fatalf("%v: %s", err, out.String())
	}
}

func TestBenchRefusesRemoteTargets(t *testing.T) {
	err := runBench(context.Background(), []string{"--url", "http://192.0.2.1:8080"}, io.Discard, io.Discard)
	if !errors.Is(err, bench.ErrNotLoopback) {
		t.Fatalf("err = %v", err)
	}
}
