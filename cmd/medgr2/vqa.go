package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"log/slog"
	"strings"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

// optionList is a repeatable --option flag.
type optionList []string

func (o *optionList) String() string { return strings.Join(*o, ", ") }

func (o *optionList) Set(s string) error {
	*o = append(*o, s)
	return nil
}

// vqaFlags are the flags of `medgr2 vqa`.
type vqaFlags struct {
	model, image, question, mode string
	options                      optionList
	device                       runtime.Device
	dtype                        models.DType
	reason                       models.ReasonOptions
}

func parseVQAFlags(args []string, stderr io.Writer) (*vqaFlags, error) {
	f := &vqaFlags{}
	fs := flag.NewFlagSet("vqa", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "model bundle folder (default: "+defaultBundles+"/vqa, or $"+envModels+"/vqa)")
	fs.StringVar(&f.image, "image", "", "image file: PNG, JPEG, DICOM, … (omit for a text-only question)")
	fs.StringVar(&f.question, "question", "", "the question (required)")
	fs.Var(&f.options, "option", "an answer option; repeat 2–4 times, lettered A, B, … in order")
	fs.StringVar(&f.mode, "mode", string(models.ModeFast), "fast (option probabilities, one forward pass) or reason (generate <think>…</think><answer>X</answer>)")
	fs.Var(&f.device, "device", "execution device: auto, cpu, cuda or cuda:N")
	fs.Var(&f.dtype, "dtype", models.DTypeUsage)
	fs.IntVar(&f.reason.MaxNewTokens, "max-new-tokens", 256, "reason mode: generation budget")
	var temp, topP float64
	fs.Float64Var(&temp, "temperature", 0, "reason mode: sampling temperature (0 = greedy)")
	fs.Float64Var(&topP, "top-p", 0, "reason mode: nucleus sampling mass (0 = off)")
	fs.IntVar(&f.reason.TopK, "top-k", 0, "reason mode: keep the K most likely tokens (0 = off)")
	fs.Uint64Var(&f.reason.Seed, "seed", 1, "reason mode: sampling seed")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError(err.Error())
	}
	f.reason.Temperature, f.reason.TopP = float32(temp), float32(topP)
	if f.model == "" {
		f.model = defaultBundle("vqa")
	}
	switch {
	case fs.NArg() > 0:
		return nil, usageError(fmt.Sprintf("vqa: unexpected arguments %q", fs.Args()))
	case f.model == "" || f.question == "":
		return nil, usageError("vqa: --question TEXT is required, and --model DIR when no default bundle is installed (" + defaultBundles + "/vqa)")
	case len(f.options) < models.MinOptions || len(f.options) > models.MaxOptions:
		return nil, usageError(fmt.Sprintf("vqa: give %d to %d --option values (got %d)", models.MinOptions, models.MaxOptions, len(f.options)))
	}
	if _, err := models.ParseMode(f.mode); err != nil {
		return nil, usageError("vqa: --mode must be fast or reason")
	}
	return f, nil
}

// runVQA implements `medgr2 vqa`: answer one multiple-choice question about
// an image and print the answer, its probability and the reasoning.
func runVQA(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	f, err := parseVQAFlags(args, stderr)
	if err != nil {
		return err
	}
	var img image.Image
	if f.image != "" {
		if img, _, err = preprocessing.DecodeFile(f.image, preprocessing.Limits{}); err != nil {
			return fmt.Errorf("vqa: %w", err)
		}
	}
	v, err := openBundle(ctx, f.model, f.device, f.dtype, stderr)
	if err != nil {
		return fmt.Errorf("vqa: %w", err)
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	req := models.VQARequest{Question: f.question, Options: f.options, Mode: models.Mode(f.mode)}
	if img != nil {
		if req.Pixels, err = v.ProcessImage(img); err != nil {
			return fmt.Errorf("vqa: %s: %w", f.image, err)
		}
	}
	ans, err := v.Answer(ctx, []models.VQARequest{req}, f.reason)
	if err != nil {
		return fmt.Errorf("vqa: %w", err)
	}
	return printVQA(stdout, req, ans[0])
}

// printVQA writes the answer in a stable, line-oriented form.
func printVQA(w io.Writer, req models.VQARequest, a models.VQAAnswer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "answer: %s. %s\n", a.Letter, req.Options[a.Index])
	if !a.Parsed {
		b.WriteString("  (the output names no option: the most probable option after it)\n")
	}
	fmt.Fprintf(&b, "probability: %.4f\n", a.Prob)
	for k, p := range a.Probs {
		fmt.Fprintf(&b, "  %c. %-30s %.4f\n", 'A'+k, req.Options[k], p)
	}
	if a.Text != "" || a.Reasoning != "" {
		fmt.Fprintf(&b, "reasoning: %s\n", a.Reasoning)
		fmt.Fprintf(&b, "output: %q (%d tokens, %s)\n", a.Text, len(a.Tokens), a.FinishReason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// openBundle opens a model bundle for a one-shot command (vqa, generate,
// score) on dev with the dtype variant asked for, logging warnings (the
// CUDA → CPU fallback) to stderr.
func openBundle(ctx context.Context, dir string, dev runtime.Device, dtype models.DType, stderr io.Writer) (*models.VLM, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return models.Open(ctx, dir, models.VLMOptions{Device: dev, DType: dtype, Logger: log})
}
