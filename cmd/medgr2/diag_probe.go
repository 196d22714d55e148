package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/train"
)

// probeFlags are the settings of the linear probe that `diag probe` and
// `diag ssl` share.
type probeFlags struct {
	data        string
	collections string
	limit       int
	imageSize   int
}

func (p *probeFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&p.data, "data", defaultDataRoot, "folder holding the labelled collections")
	fs.StringVar(&p.collections, "collections", "", "comma-separated probe tasks (default: pneumoniamnist,busi,kermany-oct,mednist-ct,retinamnist,bccd)")
	fs.IntVar(&p.limit, "limit", 400, "images per split and collection (a seeded sample; negative: all)")
	fs.IntVar(&p.imageSize, "image-size", 56, "edge the images are squeezed to before the encoder, in pixels")
}

// tasks returns the selected probe tasks: the default task of a named
// collection, or a class-labelled task for any other folder under --data.
func (p *probeFlags) tasks() []train.ProbeTask {
	all := train.DefaultProbeTasks(p.data)
	if p.collections == "" {
		return all
	}
	var out []train.ProbeTask
	for _, name := range strings.Split(p.collections, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, t := range all {
			if t.Name == name {
				out, found = append(out, t), true
			}
		}
		if !found {
			out = append(out, train.ProbeTask{Name: name, Dir: filepath.Join(p.data, name)})
		}
	}
	return out
}

// run probes the bundle in dir and prints the table.
func (p *probeFlags) run(ctx context.Context, env *runtime.Env, d diagFlags, dir string, stdout io.Writer) (err error) {
	tasks := p.tasks()
	v, err := models.Open(ctx, dir, models.VLMOptions{Env: env, Device: d.device, IntraOpThreads: d.threads})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	start := time.Now()
	rows, err := train.ProbeCollections(ctx, v, tasks, train.ProbeOptions{ImageSize: p.imageSize, Limit: p.limit})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "linear probe of %s (validation accuracy; fit on train, %s)\n", dir, time.Since(start).Round(time.Second))
	return writeProbeTable(stdout, rows)
}

// writeProbeTable prints one line per task: majority, raw pixels, encoder.
func writeProbeTable(w io.Writer, rows []train.ProbeRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "task\tmodality\tclasses\ttrain\tval\tmajority\traw pixels\tencoder\t")
	var maj, px, enc float64
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t\n", r.Task, r.Modality, r.Classes, r.Train, r.Val,
			100*r.Majority, 100*r.Pixels.Accuracy, 100*r.Encoder.Accuracy)
		maj, px, enc = maj+r.Majority, px+r.Pixels.Accuracy, enc+r.Encoder.Accuracy
	}
	if n := float64(len(rows)); n > 0 {
		fmt.Fprintf(tw, "mean\t\t\t\t\t%.1f%%\t%.1f%%\t%.1f%%\t\n", 100*maj/n, 100*px/n, 100*enc/n)
	}
	return tw.Flush()
}

// diagProbe implements `medgr2 diag probe`: a linear probe of a bundle's
// frozen vision features on each labelled collection, against raw pixels
// and the majority class.
func diagProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d diagFlags
	var p probeFlags
	var model string
	fs := flag.NewFlagSet("diag probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.add(fs)
	p.add(fs)
	fs.StringVar(&model, "model", defaultBundles+"/vqa", "bundle whose vision encoder is probed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	env, err := runtime.Open(ctx, runtime.Options{})
	if err != nil {
		return fmt.Errorf("diag probe: %w", err)
	}
	if err := p.run(ctx, env, d, model, stdout); err != nil {
		return fmt.Errorf("diag probe: %w", err)
	}
	return nil
}

// diagSSL implements `medgr2 diag ssl`: contrastive pretraining of a
// copy of a bundle's vision encoder on the train-split images of the
// collections whose modality is not held out, then the linear probe of
// the copy.
func diagSSL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d diagFlags
	var p probeFlags
	var model, out, holdout, pool, objective string
	var cfg train.SSLConfig
	var seed int64
	fs := flag.NewFlagSet("diag ssl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.add(fs)
	p.add(fs)
	fs.StringVar(&model, "model", defaultBundles+"/vqa", "bundle whose vision encoder is pretrained (not changed)")
	fs.StringVar(&out, "out", "", "folder the pretrained copy is written to")
	fs.StringVar(&holdout, "holdout", "X-Ray", "comma-separated modalities (as collection.json names them) kept out of pretraining")
	fs.StringVar(&pool, "pool", "pneumoniamnist,bccd,busi,retinamnist,kermany-oct,mednist-ct,mednist-mr", "comma-separated collections under --data whose train splits form the image pool")
	fs.StringVar(&objective, "objective", "simclr", "simclr (contrastive views) or mim (masked-window reconstruction)")
	fs.Float64Var(&cfg.MaskRatio, "mask-ratio", 0.5, "mim: share of each image's merge windows masked")
	fs.IntVar(&cfg.Steps, "steps", 200, "updates")
	fs.IntVar(&cfg.Pairs, "pairs", 16, "images per update (two views each)")
	fs.Float64Var(&cfg.LR, "lr", 1e-3, "peak learning rate")
	fs.Float64Var(&cfg.Temperature, "temperature", 0.2, "InfoNCE temperature")
	fs.Int64Var(&seed, "seed", 1, "seed of the views, the order and the projection head")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "out"); err != nil {
		return err
	}
	cfg.Seed, cfg.ImageSize, cfg.Objective = uint64(seed), p.imageSize, train.SSLObjective(objective)
	cfg.Session = runtime.SessionOptions{Device: d.device, IntraOpThreads: d.threads}
	var dirs []string
	for _, c := range strings.Split(pool, ",") {
		dirs = append(dirs, filepath.Join(p.data, strings.TrimSpace(c)))
	}
	var held []string
	for _, h := range strings.Split(holdout, ",") {
		if h = strings.TrimSpace(h); h != "" {
			held = append(held, h)
		}
	}
	images, err := train.SSLImages(dirs, held)
	if err != nil {
		return fmt.Errorf("diag ssl: %w", err)
	}
	env, err := runtime.Open(ctx, runtime.Options{})
	if err != nil {
		return fmt.Errorf("diag ssl: %w", err)
	}
	src, err := models.Load(ctx, model)
	if err != nil {
		return fmt.Errorf("diag ssl: %w", err)
	}
	cfg.Recorder = train.NewRecorder(nil, stderr, cfg.Steps)
	res, err := train.PretrainVision(ctx, env, src, images, out, cfg)
	if err != nil {
		return fmt.Errorf("diag ssl: %w", err)
	}
	fmt.Fprintln(stderr)
	writeSSLSummary(stdout, res, held)
	if err := p.run(ctx, env, d, res.Bundle.Dir, stdout); err != nil {
		return fmt.Errorf("diag ssl: %w", err)
	}
	return nil
}

// writeSSLSummary prints the run's size, time and loss curve (means over
// tenths of the run; SimCLR also its top-1 pair accuracy).
func writeSSLSummary(w io.Writer, res *train.SSLResult, held []string) {
	fmt.Fprintf(w, "ssl %s: %d images (held out: %s), %d steps in %s (%.2f s/step)\n", res.Objective, res.Images, strings.Join(held, ", "),
		len(res.Steps), res.Wall.Round(time.Second), res.Wall.Seconds()/float64(max(1, len(res.Steps))))
	n := len(res.Steps)
	parts := min(10, n)
	contrastive := res.Objective == train.SimCLR
	if contrastive {
		fmt.Fprintln(w, "steps       loss  top-1")
	} else {
		fmt.Fprintln(w, "steps       loss")
	}
	for k := range parts {
		from, to := k*n/parts, (k+1)*n/parts
		var loss, acc float64
		for _, s := range res.Steps[from:to] {
			loss, acc = loss+s.Loss, acc+s.Accuracy
		}
		m := float64(to - from)
		if contrastive {
			fmt.Fprintf(w, "%4d-%-4d %6.3f %5.1f%%\n", from+1, to, loss/m, 100*acc/m)
		} else {
			fmt.Fprintf(w, "%4d-%-4d %6.3f\n", from+1, to, loss/m)
		}
	}
}
