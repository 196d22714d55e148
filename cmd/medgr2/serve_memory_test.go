package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/api"
)

// helperServeEnv carries the arguments of a `serve` run in a child
// process (TestHelperServe), separated by newlines.
const helperServeEnv = "MEDGR2_HELPER_SERVE_ARGS"

// TestHelperServe is not a test: it runs `medgr2 serve` when started by
// startServeProcess, so a test can read the server's own resident memory.
func TestHelperServe(t *testing.T) {
	args := os.Getenv(helperServeEnv)
	if args == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(args, "\n"), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startServeProcess runs `serve` with args in a child process on addr and
// waits until it answers; the child gets SIGTERM at cleanup.
func startServeProcess(t *testing.T, addr string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$")
	args = append(append([]string{"serve"}, args...), "--addr", addr)
	cmd.Env = append(os.Environ(), helperServeEnv+"="+strings.Join(args, "\n"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			t.Logf("serve log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			return cmd
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// residentMB reads a process's resident set size in MiB (Linux).
func residentMB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		t.Fatalf("resident memory (Linux only): %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return float64(pages*int64(os.Getpagesize())) / (1 << 20)
}

// Bounds of TestServeMemoryAfterSpike.
const (
	// memoryCeilingMB bounds the server's resident memory during the
	// spike (the default bundles, 8 clients, the limits below).
	memoryCeilingMB = 1536
	// memoryReturn is how close to its baseline resident memory must come
	// after the spike, and memoryReturnWithin how soon.
	memoryReturn       = 0.2
	memoryReturnWithin = 60 * time.Second
)

// memoryRequest is one request of the spike: a route, a JSON body and the
// status it must get.
type memoryRequest struct {
	name, path string
	body       []byte
	want       int
}

// TestServeMemoryAfterSpike sends 1,000 mixed requests to a `serve`
// process on the default bundles, legal-limit ones included (questions of
// the 8,192-byte limit, 7000×7000 16-bit PNGs, /v1/score and chat requests
// with several images), checks every status, that resident memory stays
// under memoryCeilingMB, and that it comes back to within 20% of its
// level before the spike within 60 s of idling (the default
// --idle-release). Heavy: not run with -short.
func TestServeMemoryAfterSpike(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy (about a minute): runs without -short, as make test does")
	}
	reqs := memoryMix(t, 1000)
	addr := freeAddr(t)
	cmd := startServeProcess(t, addr, "--out", t.TempDir(), "--device", "cpu",
		"--model", "../../models/default/vqa", "--reward", "../../models/default/reward", "--generator", "")
	pid := cmd.Process.Pid
	c := &http.Client{Timeout: 5 * time.Minute}
	send := func(r memoryRequest) error {
		resp, err := c.Post("http://"+addr+r.path, "application/json", bytes.NewReader(r.body))
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != r.want {
			return fmt.Errorf("%s: status %d, want %d: %s", r.name, resp.StatusCode, r.want, body)
		}
		return nil
	}
	// Warm up: one request of each ordinary kind, then the baseline.
	seen := map[string]bool{"big-png": true, "long-question": true}
	for _, r := range reqs {
		if kind := strings.Fields(r.name)[0]; !seen[kind] {
			seen[kind] = true
			if err := send(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := residentMB(t, pid)

	var peak float64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, residentMB(t, pid))
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	work := make(chan memoryRequest)
	errs := make(chan error, len(reqs))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for r := range work {
				if err := send(r); err != nil {
					errs <- err
				}
			}
		})
	}
	start := time.Now()
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()
	spike := time.Since(start)
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	after := residentMB(t, pid)
	idleStart := time.Now()
	settled := after
	for time.Since(idleStart) < memoryReturnWithin && settled > base*(1+memoryReturn) {
		time.Sleep(500 * time.Millisecond)
		settled = residentMB(t, pid)
	}
	t.Logf("%d requests in %v; RSS %.0f MB baseline, %.0f MB peak, %.0f MB at the end, %.0f MB after %v idle",
		len(reqs), spike.Round(time.Millisecond), base, peak, after, settled, time.Since(idleStart).Round(time.Second))
	if peak > memoryCeilingMB {
		t.Errorf("RSS peaked at %.0f MB, over the %d MB ceiling", peak, memoryCeilingMB)
	}
	if settled > base*(1+memoryReturn) {
		t.Errorf("RSS %.0f MB after %v idle, more than %.0f%% over the %.0f MB baseline", settled, memoryReturnWithin, 100*memoryReturn, base)
	}
}

// memoryMix builds n requests: mostly small VQA questions on real images
// (each unique, so the response cache does not answer them), and among
// them the legal limits.
func memoryMix(t *testing.T, n int) []memoryRequest {
	t.Helper()
	xray := dataURIFile(t, "../../../shared/data/pneumoniamnist/test/pneumoniamnist_test_00001.png", "image/png")
	blood := dataURIFile(t, "../../../shared/data/bccd/images/BloodImage_00000.jpg", "image/jpeg")
	big := bigPNGs(t, 4, 7000)
	long := strings.Repeat("Is there an abnormal finding? ", 8192/30)
	long += strings.Repeat("x", 8192-len(long))
	opts := []string{"yes", "no", "unclear"}
	vqa := func(name, img, q string, want int) memoryRequest {
		b, _ := json.Marshal(api.VQARequest{Image: img, Question: q, Options: opts})
		return memoryRequest{name: name, path: "/v1/vqa", body: b, want: want}
	}
	var out []memoryRequest
	for i := range n {
		q := fmt.Sprintf("Request %d: is there an abnormal finding?", i)
		switch {
		case i%250 == 125:
			out = append(out, vqa(fmt.Sprintf("big-png %d", i), big[(i/250)%len(big)], q, http.StatusOK))
		case i%20 == 3:
			out = append(out, vqa(fmt.Sprintf("long-question %d", i), xray, fmt.Sprint(i)+long[len(fmt.Sprint(i)):], http.StatusBadRequest))
		case i%10 == 5:
			items := make([]api.ScoreItem, 4)
			for k := range items {
				items[k] = api.ScoreItem{Image: blood, Question: q, Options: opts, Answer: "A", Reasoning: fmt.Sprint("item ", k)}
			}
			b, _ := json.Marshal(api.ScoreRequest{Items: items})
			out = append(out, memoryRequest{name: fmt.Sprintf("score %d", i), path: "/v1/score", body: b, want: http.StatusOK})
		case i%10 == 7:
			parts := []api.ContentPart{{Type: "text", Text: q}}
			for _, img := range []string{xray, blood, xray} {
				parts = append(parts, api.ContentPart{Type: "image_url", ImageURL: &api.ImageURL{URL: img}})
			}
			b, _ := json.Marshal(map[string]any{"model": "vqa", "max_tokens": 8,
				"messages": []map[string]any{{"role": "user", "content": parts}}})
			out = append(out, memoryRequest{name: fmt.Sprintf("chat %d", i), path: "/v1/chat/completions", body: b, want: http.StatusOK})
		case i%2 == 0:
			out = append(out, vqa(fmt.Sprintf("vqa-xray %d", i), xray, q, http.StatusOK))
		default:
			out = append(out, vqa(fmt.Sprintf("vqa-blood %d", i), blood, q, http.StatusOK))
		}
	}
	return out
}

// dataURIFile reads an image file as a data URI.
func dataURIFile(t *testing.T, path, mime string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b)
}

// bigPNGs encodes n distinct size×size 16-bit grey PNGs (a gradient with a
// different corner each, so no cache answers one for another) as data URIs.
func bigPNGs(t *testing.T, n, size int) []string {
	t.Helper()
	img := image.NewGray16(image.Rect(0, 0, size, size))
	for y := range size {
		row := img.Pix[y*img.Stride : (y+1)*img.Stride]
		for x := 0; x < size; x += 64 {
			row[2*x] = byte(y >> 5)
		}
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	out := make([]string, n)
	for i := range out {
		img.Pix[0] = byte(i + 1)
		var buf bytes.Buffer
		if err := enc.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		out[i] = "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	return out
}
