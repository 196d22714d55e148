package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/pipeline/ortbackend"
	"github.com/medgr2/medgr2/runtime"
)

// pipelineFlags are the flags of `medgr2 pipeline`.
type pipelineFlags struct {
	config   string
	quick    bool
	out      string
	fresh    bool
	device   runtime.Device
	threads  int
	jobs     int
	defaults string
	readme   string
}

func parsePipelineFlags(args []string, stderr io.Writer) (*pipelineFlags, error) {
	f := &pipelineFlags{}
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "configs/pipeline.json", "pipeline config (JSON; relative paths are relative to its folder)")
	fs.BoolVar(&f.quick, "quick", false, "CI-sized run: one seed, two rounds, tiny samples (output in OUT-quick)")
	fs.StringVar(&f.out, "out", "", "output folder (default: the config's out_dir)")
	fs.BoolVar(&f.fresh, "fresh", false, "delete the output folder first instead of resuming")
	fs.Var(&f.device, "device", "execution device: auto, cpu, cuda or cuda:N")
	fs.IntVar(&f.threads, "threads", 0, "ONNX Runtime intra-op threads per session (0: the cores over --jobs, at least 1)")
	fs.IntVar(&f.jobs, "jobs", goruntime.NumCPU(), "stages that may run at once, as their inputs allow; 1 runs them in plan order")
	fs.StringVar(&f.readme, "readme", "", "with --defaults: rewrite this README's results section from the exported RESULTS.json (e.g. README.md)")
	fs.StringVar(&f.defaults, "defaults", "", "after the run, copy the first seed's vqa/generator/reward bundles into this folder (e.g. models/default)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError("pipeline: " + err.Error())
	}
	if fs.NArg() > 0 {
		return nil, usageError(fmt.Sprintf("pipeline: unexpected argument %q", fs.Arg(0)))
	}
	if f.threads < 0 {
		return nil, usageError("pipeline: --threads must be ≥ 0")
	}
	if f.jobs < 1 {
		return nil, usageError("pipeline: --jobs must be ≥ 1")
	}
	if f.threads == 0 {
		// Small models gain little from intra-op threads, so the cores go
		// to jobs (docs/2026-12-07-pipeline-jobs.md); one thread per
		// session also keeps training repeatable, which multi-threaded
		// reductions are not.
		f.threads = max(1, goruntime.NumCPU()/f.jobs)
	}
	return f, nil
}

// runPipeline implements `medgr2 pipeline`: the whole MedGR² loop, resumable.
func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	f, err := parsePipelineFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, err := pipeline.LoadConfig(f.config)
	if err != nil {
		return err
	}
	if f.out != "" {
		cfg.OutDir = f.out
	}
	if f.quick {
		cfg.Quick()
	}
	if err := cfg.Normalize(); err != nil {
		return err
	}
	if f.fresh {
		if err := os.RemoveAll(cfg.OutDir); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
	}
	progress := stderr
	if f.jobs > 1 {
		// Stages running at once would overwrite each other's in-place
		// progress bars: keep whole lines only.
		lw := &lineWriter{w: stderr}
		defer lw.Flush()
		progress = lw
	}
	be, err := ortbackend.New(ctx, ortbackend.Options{Device: f.device, Threads: f.threads, Arch: cfg.Model.Arch,
		MaxPixels: cfg.Model.MaxPixels, Progress: progress})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := be.Close(); err == nil {
			err = cerr
		}
	}()
	p, err := pipeline.New(cfg, be, pipeline.Options{Progress: progress, Jobs: f.jobs})
	if err != nil {
		return err
	}
	start := time.Now()
	report, err := p.Run(ctx)
	if err != nil {
		return err
	}
	if f.defaults != "" {
		cmdline := "medgr2 pipeline " + strings.Join(args, " ")
		if err := p.ExportDefaults(f.defaults, cmdline); err != nil {
			return err
		}
		if err := updateDefaultsReadme(f.defaults); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "pipeline: default bundles and the numbers of their %s written to %s\n", readmeFile, f.defaults)
		if f.readme != "" {
			if err := updateResultsReadme(f.readme, f.defaults); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "pipeline: results section of %s rewritten\n", f.readme)
		}
	} else if f.readme != "" {
		return usageError("pipeline: --readme needs --defaults (the section is rendered from the exported bundles)")
	}
	abs, _ := filepath.Abs(report)
	_, err = fmt.Fprintf(stdout, "pipeline: report %s (%d stages run, %d skipped, %.1fs)\n", abs, len(p.Ran()),
		len(p.Skipped()), time.Since(start).Seconds())
	return err
}
