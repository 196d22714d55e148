// Command medgr2 serves, trains and evaluates medical vision-language models
// through ONNX Runtime. Run `medgr2 help` for the list of subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of the CLI.
type command struct {
	name    string // first argument that selects it
	summary string // one line for `medgr2 help`
	// run executes the command with the arguments after its name, writing
	// results to stdout and diagnostics to stderr.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand, in the order `medgr2 help` prints them.
// Each command's code lives in its own file in this folder.
func commands() []command {
	return []command{
		{name: "version", summary: "print the medgr2 version", run: runVersion},
		{name: "export", summary: "build a model bundle (random or given weights)", run: runExport},
		{name: "vqa", summary: "answer a multiple-choice question about an image with a model bundle (--mode fast|reason)", run: runVQA},
		{name: "generate", summary: "write --n multiple-choice items with reasoning about an image with a generator bundle (JSON lines)", run: runGenerate},
		{name: "score", summary: "score a sample (--question, --option…, --answer, --reasoning) or --items FILE with a reward bundle", run: runScore},
		{name: "doctor", summary: "check ONNX Runtime: library, version, providers, device (--device)", run: runDoctor},
		{name: "tokenize", summary: "encode/decode JSON text arrays with a tokenizer.json; train a BPE tokenizer", run: runTokenize},
		{name: "data", summary: "build OmniMedVQA-style benchmarks from labelled collections; dataset cards", run: runData},
		{name: "eval", summary: "evaluate an answerer on a benchmark: accuracy by modality and question type, baselines, report", run: runEval},
		{name: "pipeline", summary: "run the MedGR² loop end to end (generate, score, filter, co-develop, SFT, GRPO, report); resumable", run: runPipeline},
		{name: "serve", summary: "run the REST server (VQA, generate, score, OpenAI chat, jobs, metrics)", run: runServe},
		{name: "bench", summary: "server vs raw baseline on a mix of real requests (default bundle, or --model DIR|random|fake); --url: load a running server", run: runBench},
		{name: "train", summary: "train sft|reward|grpo --config FILE (checkpoints, --resume, metrics.jsonl, curves.png, trained bundle)", run: runTrain},
		{name: "diag", summary: "diagnostics of a pipeline run's models (oracle, reward, generator, letter) on explicit paths", run: runDiag},
		{name: "preprocess", summary: "decode images/DICOM (limits, windowing, frames) and report Qwen2-VL patches; --out renders PNGs", run: runPreprocess},
	}
}

// version is the medgr2 release, overridden at link time with
// -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "medgr2:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode maps an error to the process exit status: 2 for usage errors,
// 1 for everything else.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// usageError reports a command line that cannot be run.
type usageError string

func (e usageError) Error() string { return string(e) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	printUsage(stderr)
	return usageError(fmt.Sprintf("unknown command %q", args[0]))
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: medgr2 <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `medgr2 <command> -h` for a command's flags.")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintln(stdout, "medgr2", version)
	return err
}
