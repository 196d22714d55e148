package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
)

// diagMemory implements `medgr2 diag memory`: the resident memory of this
// process before, right after and some seconds after a spike of large VQA
// batches, and the spike's time, with ONNX Runtime's CPU arena on or off.
// Run it once per setting: RSS is per process.
func diagMemory(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var d diagFlags
	var model, imagePath string
	var batch, batches, repeat int
	var arena, reopen bool
	var settle time.Duration
	fs := flag.NewFlagSet("diag memory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.add(fs)
	fs.StringVar(&model, "model", defaultBundles+"/vqa", "VQA bundle")
	fs.StringVar(&imagePath, "image", "", "image every request asks about (for example a 640×480 BCCD JPEG)")
	fs.IntVar(&batch, "batch", 16, "requests per batch")
	fs.IntVar(&batches, "batches", 3, "batches in the spike")
	fs.IntVar(&repeat, "question-repeat", 60, "the question is a sentence repeated this many times (a long prompt)")
	fs.BoolVar(&arena, "cpu-arena", true, "ONNX Runtime's CPU memory arena")
	fs.BoolVar(&reopen, "reopen", false, "after the spike, open the bundle afresh and close the spiked one (what serve's --idle-release does) before the last reading")
	fs.DurationVar(&settle, "settle", 2*time.Second, "idle time after the spike, after returning Go's free memory, before the last reading")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "image"); err != nil {
		return err
	}
	open := func() (*models.VLM, error) {
		return models.Open(ctx, model, models.VLMOptions{Device: d.device, IntraOpThreads: d.threads, DisableCPUArena: !arena,
			MaxPromptTokens: 1 << 16})
	}
	v, err := open()
	if err != nil {
		return fmt.Errorf("diag memory: %w", err)
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	img, _, err := preprocessing.DecodeFile(imagePath, preprocessing.Limits{})
	if err != nil {
		return fmt.Errorf("diag memory: %w", err)
	}
	px, err := v.ProcessImage(img)
	if err != nil {
		return fmt.Errorf("diag memory: %w", err)
	}
	reqs := make([]models.VQARequest, batch)
	for i := range reqs {
		reqs[i] = models.VQARequest{Pixels: px, Question: strings.Repeat("Is there an abnormal cell in this image? ", repeat),
			Options: []string{"yes", "no", "unclear", "cannot tell"}}
	}
	base, err := rssMB()
	if err != nil {
		return fmt.Errorf("diag memory: %w", err)
	}
	start := time.Now()
	for range batches {
		if _, err := v.Answer(ctx, reqs, models.ReasonOptions{}); err != nil {
			return fmt.Errorf("diag memory: %w", err)
		}
	}
	spike := time.Since(start)
	after, _ := rssMB()
	var reopened time.Duration
	if reopen {
		t := time.Now()
		nv, err := open()
		if err != nil {
			return fmt.Errorf("diag memory: reopen: %w", err)
		}
		old := v
		v = nv
		reopened = time.Since(t)
		if err := old.Close(); err != nil {
			return fmt.Errorf("diag memory: %w", err)
		}
	}
	debug.FreeOSMemory()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(settle):
	}
	settled, _ := rssMB()
	_, err = fmt.Fprintf(stdout, "cpu arena %v: %d batches of %d in %v; RSS %.0f MB before, %.0f MB after, %.0f MB after %v idle",
		arena, batches, batch, spike.Round(time.Millisecond), base, after, settled, settle)
	if err == nil && reopen {
		_, err = fmt.Fprintf(stdout, " (reopened in %v)", reopened.Round(time.Millisecond))
	}
	if err == nil {
		_, err = fmt.Fprintln(stdout)
	}
	return err
}

// rssMB returns this process's resident set size in MiB (Linux).
func rssMB() (float64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("resident memory: %w (Linux only)", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("resident memory: /proc/self/statm reads %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resident memory: %w", err)
	}
	return float64(pages*int64(os.Getpagesize())) / (1 << 20), nil
}
