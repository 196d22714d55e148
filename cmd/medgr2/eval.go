package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/medgr2/medgr2/bench/accuracy"
	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// newModelAnswerer is THE integration point for model bundles: it opens
// the bundle in dir (models.Open: manifest, files, ONNX signatures, ORT
// sessions) and returns a models.Answerer that answers one batch per call,
// with per-option probabilities from the fast path (Answer.OptionProbs) or,
// with --mode reason, the generated "<think>…</think><answer>X</answer>"
// text (Answer.Text). Images are read from Item.ImageFile(). The returned
// close function releases the bundle.
func newModelAnswerer(ctx context.Context, f *evalFlags) (eval.Answerer, func() error, error) {
	mode, err := models.ParseMode(f.mode)
	if err != nil {
		return nil, nil, usageError("eval: --mode must be fast or reason")
	}
	v, err := models.Open(ctx, f.model, models.VLMOptions{Device: f.device, DType: f.dtype})
	if err != nil {
		return nil, nil, fmt.Errorf("eval: %w", err)
	}
	a, err := models.NewAnswerer(v, models.AnswererOptions{Mode: mode,
		Reason: models.ReasonOptions{MaxNewTokens: f.maxNewTokens}})
	if err != nil {
		return nil, nil, errors.Join(err, v.Close())
	}
	return a, v.Close, nil
}

// evalFlags are the flags of `medgr2 eval`.
type evalFlags struct {
	model, answers, answerer, data, split, real, train, out string
	splitSet                                                bool   // --split was given on the command line
	mode                                                    string // --model: fast or reason
	device                                                  runtime.Device
	dtype                                                   models.DType
	maxNewTokens                                            int
	batch                                                   int
	seed                                                    uint64
	lenient                                                 bool
	imageSwap                                               bool // also measure image sensitivity
}

func parseEvalFlags(args []string, stderr io.Writer) (*evalFlags, error) {
	f := &evalFlags{}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "model bundle folder (VQA role)")
	fs.StringVar(&f.mode, "mode", string(models.ModeFast), "with --model: fast (option probabilities) or reason (generated answers)")
	fs.Var(&f.device, "device", "with --model: execution device auto, cpu, cuda or cuda:N")
	fs.Var(&f.dtype, "dtype", "with --model: "+models.DTypeUsage)
	fs.IntVar(&f.maxNewTokens, "max-new-tokens", 256, "with --model --mode reason: generation budget per item")
	fs.StringVar(&f.answers, "answers", "", "JSONL of recorded outputs: {\"question_id\", \"output\"|\"probs\"}")
	fs.StringVar(&f.answerer, "answerer", "", "scripted answerer: random, majority or constant:X")
	fs.StringVar(&f.data, "data", "", "benchmark file (JSON or JSONL, OmniMedVQA format)")
	fs.StringVar(&f.split, "split", data.SplitTest, "evaluate only items of this split when the file has splits (\"\" for all); the report says how many items it kept")
	fs.StringVar(&f.real, "real", "", "also evaluate these real OmniMedVQA items as they are, e.g. "+filepath.Join(defaultDataRoot, "omnimedvqa-real", "omnimedvqa_real.json")+" (empty: no real row)")
	fs.StringVar(&f.train, "train", "", "items the majority baseline counts answers in, e.g. the benchmark's train.jsonl (empty: the evaluated items themselves); the report names it")
	fs.StringVar(&f.out, "out", "out/eval", "report folder: accuracy.txt, accuracy.json, accuracy.png, predictions.jsonl")
	fs.IntVar(&f.batch, "batch", 16, "items per answerer call")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the random baseline")
	fs.BoolVar(&f.lenient, "skip-invalid", false, "skip malformed items (reported on stderr) instead of failing")
	fs.BoolVar(&f.imageSwap, "image-swap", false, "with --model: also answer with each image swapped for one of another modality and report how far the answers move (sensitivity.json)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if f.data == "" {
		return nil, usageError("eval: --data FILE is required")
	}
	fs.Visit(func(fl *flag.Flag) { f.splitSet = f.splitSet || fl.Name == "split" })
	n := 0
	for _, s := range []string{f.model, f.answers, f.answerer} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, usageError("eval: give exactly one of --model DIR, --answers FILE, --answerer NAME")
	}
	if f.imageSwap && f.model == "" {
		return nil, usageError("eval: --image-swap needs --model DIR")
	}
	return f, nil
}

// runEval implements `medgr2 eval`.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseEvalFlags(args, stderr)
	if err != nil {
		return err
	}
	load := func(path string) ([]data.Item, error) {
		var opts []data.LoadOption
		if f.lenient {
			opts = append(opts, data.SkipInvalid(func(e *data.ItemError) { fmt.Fprintln(stderr, "skipped:", e) }))
		}
		return data.Load(path, opts...)
	}
	all, err := load(f.data)
	if err != nil {
		return err
	}
	items, split, splitNote, err := selectSplit(all, f.split, f.splitSet)
	if err != nil {
		return fmt.Errorf("eval: %s: %w", f.data, err)
	}
	notes := []string{fmt.Sprintf("%s: %s", filepath.Base(f.data), splitNote)}
	fmt.Fprintf(stderr, "eval: %s\n", notes[0])
	subject, name, closeFn, err := f.subject(ctx, items, load)
	if err != nil {
		return err
	}
	if closeFn != nil {
		defer closeFn()
	}
	benches := []benchSet{{fmt.Sprintf("%s (%s)", filepath.Base(f.data), orAll(split)), items}}
	if real, ok, err := f.realItems(load); err != nil {
		return err
	} else if ok {
		benches = append(benches, benchSet{"OmniMedVQA real", real})
	}
	majority, majorityNote, err := f.majority(items, load)
	if err != nil {
		return err
	}
	notes = append(notes, majorityNote)
	rep, preds, err := evaluateAll(ctx, f, benches, []system{{name, subject}, {"random", eval.Random{Seed: f.seed}}, {"majority", majority}}, stderr)
	if err != nil {
		return err
	}
	rep.Notes = notes
	if err := rep.Save(f.out); err != nil {
		return err
	}
	if err := writePredictions(filepath.Join(f.out, "predictions.jsonl"), preds); err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if f.imageSwap {
		if err := reportSensitivity(ctx, f, subject, items, stdout, stderr); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(stdout, "\nreport written to %s\n", f.out)
	return err
}

// reportSensitivity measures how much the model's answers depend on the
// image (eval.ImageSensitivity), prints it and writes sensitivity.json.
func reportSensitivity(ctx context.Context, f *evalFlags, a eval.Answerer, items []data.Item, stdout, stderr io.Writer) error {
	s, err := eval.ImageSensitivity(ctx, a, items, eval.Options{BatchSize: f.batch, Progress: stderr, Description: "image swap"})
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.out, "sensitivity.json"), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "\nimage swap (%d items, each image replaced by one of another modality): answers moved by %.3f (mean total variation), %.1f%% of predictions changed, accuracy %.1f%% → %.1f%%\n",
		s.N, s.MeanTV, 100*s.Changed, 100*s.Accuracy, 100*s.SwappedAccuracy)
	return err
}

// system is one answerer in the report.
type system struct {
	name string
	a    eval.Answerer
}

// benchSet is one set of items in the report.
type benchSet struct {
	name  string
	items []data.Item
}

func evaluateAll(ctx context.Context, f *evalFlags, benches []benchSet, systems []system, stderr io.Writer) (accuracy.Report, []eval.Prediction, error) {
	rep := accuracy.Report{Title: "medgr2 eval: accuracy with 95% Wilson intervals"}
	var subjectPreds []eval.Prediction
	for _, b := range benches {
		for i, s := range systems {
			res, err := eval.Evaluate(ctx, s.a, b.items, eval.Options{
				BatchSize: f.batch, Progress: stderr, Description: s.name + " on " + b.name,
			})
			if err != nil {
				return rep, nil, err
			}
			rep.Add(s.name, b.name, res.Summary)
			if i == 0 {
				subjectPreds = append(subjectPreds, res.Predictions...)
			}
		}
	}
	return rep, subjectPreds, nil
}

func (f *evalFlags) subject(ctx context.Context, items []data.Item, load func(string) ([]data.Item, error)) (eval.Answerer, string, func() error, error) {
	switch {
	case f.model != "":
		a, closeFn, err := newModelAnswerer(ctx, f)
		return a, filepath.Base(f.model), closeFn, err
	case f.answers != "":
		a, err := eval.LoadAnswers(f.answers)
		return a, filepath.Base(f.answers), nil, err
	}
	switch name, arg, _ := strings.Cut(f.answerer, ":"); name {
	case "random":
		return eval.Random{Seed: f.seed + 1}, "random (subject)", nil, nil
	case "majority":
		m, _, err := f.majority(items, load)
		return m, "majority (subject)", nil, err
	case "constant":
		c, err := eval.NewConstant(arg)
		return c, "constant " + arg, nil, err
	default:
		return nil, "", nil, usageError(fmt.Sprintf("eval: unknown answerer %q (want random, majority or constant:X)", f.answerer))
	}
}

// realItems loads --real when it is given; a missing file is an error.
func (f *evalFlags) realItems(load func(string) ([]data.Item, error)) ([]data.Item, bool, error) {
	if f.real == "" {
		return nil, false, nil
	}
	if _, err := os.Stat(f.real); err != nil {
		return nil, false, fmt.Errorf("eval: --real: %w", err)
	}
	items, err := load(f.real)
	return items, err == nil, err
}

// majority returns the majority baseline and a note naming what it
// counted: the --train file, or else the evaluated items themselves (an
// optimistic baseline, since it sees the evaluated answers).
func (f *evalFlags) majority(items []data.Item, load func(string) ([]data.Item, error)) (*eval.Majority, string, error) {
	if f.train == "" {
		return eval.NewMajority(items), fmt.Sprintf("majority baseline counts answers in the %d evaluated items (no --train)", len(items)), nil
	}
	ref, err := load(f.train)
	if err != nil {
		return nil, "", fmt.Errorf("eval: --train: %w", err)
	}
	return eval.NewMajority(ref), fmt.Sprintf("majority baseline counts answers in %s (%d items)", f.train, len(ref)), nil
}

// selectSplit keeps the items of split and returns them, the split it
// applied ("" when it kept every item) and a note on what it kept. A file
// without split fields is kept whole, unless the split was asked for
// explicitly (explicit), which is then an error; a split that matches
// nothing is an error.
func selectSplit(items []data.Item, split string, explicit bool) (_ []data.Item, applied, note string, _ error) {
	hasSplits := false
	for _, it := range items {
		hasSplits = hasSplits || it.Split != ""
	}
	switch {
	case len(items) == 0:
		return nil, "", "", errors.New("no items")
	case split == "":
		return items, "", fmt.Sprintf("all %d items (--split \"\")", len(items)), nil
	case !hasSplits && explicit:
		return nil, "", "", usageError(fmt.Sprintf("--split %s: the items have no split field (give --split \"\")", split))
	case !hasSplits:
		return items, "", fmt.Sprintf("all %d items (they have no split field)", len(items)), nil
	}
	var out []data.Item
	for _, it := range items {
		if data.NormalizeSplit(it.Split) == data.NormalizeSplit(split) {
			out = append(out, it)
		}
	}
	if len(out) == 0 {
		return nil, "", "", fmt.Errorf("no items of split %q (--split \"\" for all %d)", split, len(items))
	}
	return out, split, fmt.Sprintf("%d of %d items, split %q (--split; \"\" for all)", len(out), len(items), split), nil
}

func orAll(s string) string {
	if s == "" {
		return "all"
	}
	return s
}
