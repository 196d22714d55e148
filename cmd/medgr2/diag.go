package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/pipeline/ortbackend"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/train"
)

// diagUsage is what `medgr2 diag -h` prints.
const diagUsage = `usage: medgr2 diag oracle|reward|generator|letter|memory|probe|ssl [flags]

Diagnostics of a pipeline run's models; each reads the paths its flags name
and prints what it measured. docs/ holds dated records of their results.

  oracle     SFT a fresh VQA policy on a benchmark's whole labelled train split
             and print its accuracy (can the model learn the task at all?)
  reward     AUC of reward-model scores: coherent over incoherent samples and
             correct over wrong ones, on a round's candidates
  generator  sample generator bundles on a round's candidate images and print
             the parse rate, coherence and truth, with the answer letter
             sampled and greedy
  letter     how often a generator's most likely answer letter is the one of
             the option its reasoning names (ortbackend.Backend.LetterLookup)
  memory     this process's resident memory before, right after and after a
             spike of large VQA batches, with ONNX Runtime's CPU arena on or off
  probe      linear probe of a bundle's frozen vision features on each labelled
             collection, against raw pixels and the majority class
  ssl        contrastive (SimCLR) pretraining of a copy of a bundle's vision
             encoder on unlabelled train images, then the probe of the copy

Run ` + "`medgr2 diag NAME -h`" + ` for a diagnostic's flags.
`

func runDiag(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("diag: want `medgr2 diag oracle|reward|generator|letter|memory|probe|ssl [flags]`")
	}
	if isHelp(args[0]) {
		_, err := fmt.Fprint(stdout, diagUsage)
		return err
	}
	run := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"oracle": diagOracle, "reward": diagReward, "generator": diagGenerator, "letter": diagLetter, "memory": diagMemory,
		"probe": diagProbe, "ssl": diagSSL,
	}[args[0]]
	if run == nil {
		return usageError(fmt.Sprintf("diag: unknown diagnostic %q (want oracle, reward, generator, letter, memory, probe or ssl)", args[0]))
	}
	err := run(ctx, args[1:], stdout, stderr)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// diagFlags are the settings every diagnostic shares.
type diagFlags struct {
	threads int
	device  runtime.Device
}

func (d *diagFlags) add(fs *flag.FlagSet) {
	fs.IntVar(&d.threads, "threads", 0, "ONNX Runtime intra-op threads (0: ORT's choice)")
	fs.Var(&d.device, "device", "execution device: auto, cpu, cuda or cuda:N")
}

// backend opens the ONNX Runtime backend; arch shapes new bundles only
// (nil: models.DefaultConfig).
func (d *diagFlags) backend(ctx context.Context, arch func(int) models.ArchConfig, progress io.Writer) (*ortbackend.Backend, error) {
	return ortbackend.New(ctx, ortbackend.Options{Device: d.device, Threads: d.threads, Arch: arch, Progress: progress})
}

// required returns a usage error naming the first empty flag of names.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return usageError(fmt.Sprintf("%s: --%s is required", fs.Name(), n))
		}
	}
	return nil
}

// diagOracle runs `medgr2 diag oracle`.
func diagOracle(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var d diagFlags
	var dataDir, tok, exclude string
	var items int
	mc := pipeline.ModelConfig{HiddenSize: 64, IntermediateSize: 192, Layers: 3, VisionWidth: 48, VisionDepth: 1}
	o := pipeline.TrainOptions{Epochs: 15, BatchSize: 16, LearningRate: 3e-3, Seed: 1}
	fs := flag.NewFlagSet("diag oracle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.add(fs)
	fs.StringVar(&dataDir, "data", "", "a pipeline run's data stage folder (stages/data: "+builder.FileXTrain+", "+builder.FileXVal+", test.jsonl)")
	fs.StringVar(&tok, "tokenizer", "", "the run's tokenizer.json (stages/tokenizer/tokenizer.json)")
	fs.StringVar(&exclude, "exclude-modality", "X-Ray", "test items of this modality are left out (the held-out modality; \"\": none)")
	fs.IntVar(&items, "items", 0, "train on at most this many items (0: all)")
	fs.IntVar(&o.Epochs, "epochs", o.Epochs, "passes over the training rows")
	fs.IntVar(&o.BatchSize, "batch", o.BatchSize, "rows per step")
	fs.Float64Var(&o.LearningRate, "lr", o.LearningRate, "peak learning rate")
	fs.IntVar(&o.OptionShuffles, "shuffles", 0, "option-order-shuffled copies of each item (pipeline.TrainOptions.OptionShuffles)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "data order and shuffle seed")
	fs.IntVar(&mc.HiddenSize, "hidden", mc.HiddenSize, "decoder width")
	fs.IntVar(&mc.IntermediateSize, "intermediate", mc.IntermediateSize, "MLP width")
	fs.IntVar(&mc.Layers, "layers", mc.Layers, "decoder layers")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "data", "tokenizer"); err != nil {
		return err
	}
	var sets [3][]data.Item
	for i, name := range []string{builder.FileXTrain, builder.FileXVal, "test.jsonl"} {
		if sets[i], err = data.Load(filepath.Join(dataDir, name)); err != nil {
			return fmt.Errorf("diag oracle: %w", err)
		}
	}
	sets[2] = slices.DeleteFunc(sets[2], func(it data.Item) bool { return exclude != "" && it.ModalityType == exclude })
	if items > 0 && items < len(sets[0]) {
		sets[0] = sets[0][:items]
	}
	be, err := d.backend(ctx, mc.Arch, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, be.Close()) }()
	tmp, err := os.MkdirTemp("", "medgr2-oracle-")
	if err != nil {
		return fmt.Errorf("diag oracle: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	base, out := filepath.Join(tmp, "base"), filepath.Join(tmp, "out")
	if err := be.NewBundle(ctx, base, pipeline.RoleVQA, tok, o.Seed); err != nil {
		return err
	}
	ex := make([]pipeline.Example, len(sets[0]))
	for i, it := range sets[0] {
		ex[i] = pipeline.Example{Item: it}
	}
	st, err := be.SFT(ctx, base, out, pipeline.RoleVQA, ex, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained on %d items: %d steps, final loss %.4f\n", len(ex), st.Steps, st.Metrics["loss"])
	a, release, err := be.Answerer(ctx, out)
	if err != nil {
		return err
	}
	defer release()
	for i, name := range []string{"train (first 300)", "validation", "test"} {
		set := sets[i]
		if i == 0 {
			set = set[:min(300, len(set))]
		}
		res, err := eval.Evaluate(ctx, a, set, eval.Options{BatchSize: 32})
		if err != nil {
			return err
		}
		printAccuracy(stdout, name, res)
	}
	return nil
}

// printAccuracy prints a result's accuracy overall, per question type and
// the predicted letters' counts.
func printAccuracy(w io.Writer, name string, res *eval.Result) {
	fmt.Fprintf(w, "%s: %.1f%% (n=%d)\n", name, 100*res.Summary.Overall.Accuracy, res.Summary.Overall.N)
	for _, s := range res.Summary.ByQuestionType {
		fmt.Fprintf(w, "   %-28s %.1f%% (n=%d)\n", s.Group, 100*s.Accuracy, s.N)
	}
	counts := map[string]int{}
	for _, p := range res.Predictions {
		letter := "none"
		if p.Predicted >= 0 && p.Predicted < len(data.Letters) {
			letter = data.Letters[p.Predicted : p.Predicted+1]
		}
		counts[letter]++
	}
	keys := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	fmt.Fprintf(w, "   predicted letters: %s\n", strings.Join(parts, ", "))
}

// candidateFlags name a round's candidates and where their images are.
type candidateFlags struct {
	path, root string
}

func (c *candidateFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "candidates", "", "a round's candidates.jsonl (stages/sN/round-K/candidates.jsonl)")
	fs.StringVar(&c.root, "root", ".", "the folder the pipeline ran in: the candidates' relative image paths start there")
}

// load reads the candidates with every image path made absolute.
func (c *candidateFlags) load() ([]pipeline.Candidate, error) {
	cands, err := pipeline.LoadCandidates(c.path)
	if err != nil {
		return nil, err
	}
	for i := range cands {
		it := &cands[i].Item
		if it.ImagePath != "" && !filepath.IsAbs(it.ImagePath) {
			if it.ImagePath, err = filepath.Abs(filepath.Join(c.root, filepath.FromSlash(it.ImagePath))); err != nil {
				return nil, fmt.Errorf("diag: %w", err)
			}
		}
		it.Root = ""
	}
	return cands, nil
}

// diagReward runs `medgr2 diag reward`.
func diagReward(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var d diagFlags
	var c candidateFlags
	var bundles string
	fs := flag.NewFlagSet("diag reward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.add(fs)
	c.add(fs)
	fs.StringVar(&bundles, "bundles", "", "comma-separated reward-model bundles to score with")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "candidates", "bundles"); err != nil {
		return err
	}
	all, err := c.load()
	if err != nil {
		return err
	}
	var ex []pipeline.Example
	var coherent, correct []bool
	for _, cand := range all {
		if cand.Err == "" {
			ex = append(ex, pipeline.Example{Item: cand.Item, Reasoning: cand.Reasoning})
			coherent = append(coherent, pipeline.Coherent(cand.Item, cand.Reasoning))
			correct = append(correct, cand.Correct)
		}
	}
	be, err := d.backend(ctx, nil, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, be.Close()) }()
	for _, b := range splitList(bundles) {
		s, err := be.Score(ctx, b, ex)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: n=%d AUC coherent>incoherent %.3f, correct>wrong %.3f\n", b, len(s),
			train.AUC(split(s, coherent)), train.AUC(split(s, correct)))
	}
	return nil
}

// split returns the scores whose flag is set and the others.
func split(scores []float64, pos []bool) (yes, no []float64) {
	for i, s := range scores {
		if pos[i] {
			yes = append(yes, s)
		} else {
			no = append(no, s)
		}
	}
	return yes, no
}

// diagGenerator runs `medgr2 diag generator`.
func diagGenerator(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var d diagFlags
	var c candidateFlags
	var bundles, truthPath string
	var perImage, maxNew int
	var temp float64
	var seed uint64
	fs := flag.NewFlagSet("diag generator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.add(fs)
	c.add(fs)
	fs.StringVar(&bundles, "bundles", "", "comma-separated generator bundles")
	fs.StringVar(&truthPath, "truth", "", "the run's labelled items (stages/data/all.jsonl)")
	fs.IntVar(&perImage, "per-image", 4, "samples per candidate image")
	fs.Float64Var(&temp, "temperature", 0.8, "sampling temperature")
	fs.IntVar(&maxNew, "max-new-tokens", 96, "completion length cap")
	fs.Uint64Var(&seed, "seed", 11, "sampling seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "candidates", "bundles", "truth"); err != nil {
		return err
	}
	cands, err := c.load()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(truthPath)
	if err != nil {
		return fmt.Errorf("diag generator: %w", err)
	}
	items, err := data.Load(abs)
	if err != nil {
		return fmt.Errorf("diag generator: %w", err)
	}
	truth := pipeline.NewTruth(items)
	reqs := genRequests(cands, perImage)
	be, err := d.backend(ctx, nil, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, be.Close()) }()
	greedy := 0.0
	for _, b := range splitList(bundles) {
		for _, letter := range []*float64{nil, &greedy} {
			out, err := be.Generate(ctx, b, reqs, pipeline.SampleOptions{Temperature: temp, AnswerTemperature: letter,
				MaxNewTokens: maxNew, Seed: seed})
			if err != nil {
				return err
			}
			mode := "letter sampled"
			if letter != nil {
				mode = "letter greedy"
			}
			st := generatedStats(out, reqs, truth)
			fmt.Fprintf(stdout, "%s [%s]: %d samples, parsed %d, coherent %.1f%%, correct %.1f%% (coherent and correct %d)\n",
				b, mode, len(out), st.parsed, 100*st.share(st.coherent), 100*st.share(st.correct), st.both)
		}
	}
	return nil
}

// genRequests asks for perImage samples of each distinct candidate image.
func genRequests(cands []pipeline.Candidate, perImage int) []pipeline.GenRequest {
	var reqs []pipeline.GenRequest
	seen := map[string]bool{}
	for _, c := range cands {
		if seen[c.Item.ImagePath] {
			continue
		}
		seen[c.Item.ImagePath] = true
		for j := range perImage {
			reqs = append(reqs, pipeline.GenRequest{Image: c.Item.ImagePath, Modality: c.Item.ModalityType,
				Dataset: c.Item.Dataset, QuestionID: fmt.Sprintf("%s-%d", c.Item.QuestionID, j)})
		}
	}
	return reqs
}

// genStats counts generated samples as the loop does.
type genStats struct{ parsed, coherent, correct, both int }

// share returns n over the parsed samples (0 without any).
func (s genStats) share(n int) float64 { return float64(n) / float64(max(s.parsed, 1)) }

// generatedStats counts the parsed (repeated options dropped, as the loop
// does), coherent and truly correct samples of out (requested by reqs).
func generatedStats(out []pipeline.Generated, reqs []pipeline.GenRequest, truth *pipeline.Truth) genStats {
	var st genStats
	for i, g := range out {
		if g.Err != "" {
			continue
		}
		g.Item.ImagePath, g.Item.Root = reqs[i].Image, ""
		if g.Item.QuestionID == "" {
			g.Item.QuestionID = reqs[i].QuestionID
		}
		g.Item.DedupeOptions()
		if g.Item.Validate() != nil {
			continue
		}
		st.parsed++
		c, ok := pipeline.Coherent(g.Item, g.Reasoning), truth.Correct(g.Item)
		if c {
			st.coherent++
		}
		if ok {
			st.correct++
		}
		if c && ok {
			st.both++
		}
	}
	return st
}

// diagLetter runs `medgr2 diag letter`.
func diagLetter(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var d diagFlags
	var itemsPath, bundles string
	var limit int
	var textOnly bool
	var seed uint64
	fs := flag.NewFlagSet("diag letter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.add(fs)
	fs.StringVar(&itemsPath, "items", "", "labelled items (for example a run's stages/data/validation.jsonl)")
	fs.StringVar(&bundles, "bundles", "", "comma-separated generator bundles")
	fs.IntVar(&limit, "max", 200, "use at most this many items (0: all)")
	fs.BoolVar(&textOnly, "text-only", false, "drop the images, as the pretrain stage trains")
	fs.Uint64Var(&seed, "seed", 3, "option-shuffle seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "items", "bundles"); err != nil {
		return err
	}
	items, err := data.Load(itemsPath)
	if err != nil {
		return fmt.Errorf("diag letter: %w", err)
	}
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	if textOnly {
		for i := range items {
			items[i].ImagePath = ""
		}
	}
	be, err := d.backend(ctx, nil, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, be.Close()) }()
	for _, b := range splitList(bundles) {
		st, err := be.LetterLookup(ctx, b, items, seed)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: letter of the named option most likely in %d of %d (%.1f%%; chance %.1f%%)\n",
			b, st.Hits, st.Items, 100*st.Rate(), 100*st.Chance)
	}
	return nil
}
