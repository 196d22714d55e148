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
	"strconv"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/train"
)

// trainConfig is the JSON of `medgr2 train … --config FILE`; every field is
// also a flag of the same name, which overrides the file.
type trainConfig struct {
	Bundle          string   `json:"bundle"`           // the model bundle to start from
	Data            string   `json:"data"`             // OmniMedVQA items (JSON or JSONL)
	Out             string   `json:"out"`              // output folder: bundle/, checkpoints/, metrics.jsonl, curves.png
	Steps           int      `json:"steps"`            // updates
	LR              float64  `json:"lr"`               // peak learning rate
	Warmup          int      `json:"warmup"`           // warm-up updates
	Decay           string   `json:"decay"`            // constant, linear or cosine
	Batch           int      `json:"batch"`            // rows per step
	Lengths         []int    `json:"lengths"`          // bucket lengths
	Seed            uint64   `json:"seed"`             // data order and init of new heads
	CheckpointEvery int      `json:"checkpoint_every"` // updates between checkpoints
	Freeze          []string `json:"freeze"`           // parameter-name prefixes or modules (vision, embeddings, decoder, head) kept fixed
	TrainVision     bool     `json:"train_vision"`     // train the vision encoder too (rows carry pixels)
	Threads         int      `json:"threads"`          // ORT intra-op threads (0: ORT's choice)
	MaxItems        int      `json:"max_items"`        // use at most this many items (0: all)
	// RankWeight weighs the reward objective's pairwise ranking term
	// between the graded samples of one item (0: MSE only).
	RankWeight float64 `json:"rank_weight"`
}

func defaultTrainConfig() trainConfig {
	return trainConfig{Steps: 100, LR: 1e-3, Warmup: 10, Decay: "cosine", Batch: 8,
		Lengths: []int{64, 96, 128, 160, 192, 256}, Seed: 1, CheckpointEvery: 50,
		RankWeight: train.DefaultRewardRankWeight}
}

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("train: want `medgr2 train sft|reward|grpo --config FILE [flags]`")
	}
	if isHelp(args[0]) {
		_, err := fmt.Fprint(stdout, trainUsage)
		return err
	}
	obj := train.Objective(args[0])
	var err error
	switch obj {
	case train.SFT, train.Reward:
		var cfg trainConfig
		var resume bool
		if cfg, resume, err = parseTrainFlags(args[0], args[1:], stderr); err == nil {
			err = trainSupervised(ctx, obj, cfg, resume, stdout, stderr)
		}
	case train.GRPO:
		err = trainGRPO(ctx, args[1:], stdout, stderr)
	default:
		return usageError(fmt.Sprintf("train: unknown objective %q (want sft, reward or grpo)", args[0]))
	}
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// trainUsage is what `medgr2 train -h` prints.
const trainUsage = `usage: medgr2 train sft|reward|grpo [--config FILE] [flags]

objectives:
  sft     supervised fine-tuning on the answer text
  reward  train a reward model on graded samples
  grpo    group-relative policy optimisation with the hybrid reward

Run ` + "`medgr2 train OBJECTIVE -h`" + ` for an objective's flags.
`

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// errHelpShown reports that a flag set printed its help on -h: the command
// stops there and succeeds.
var errHelpShown = errors.New("medgr2: help shown")

// parseFlags parses args into fs: -h (help printed by fs) is errHelpShown,
// and a bad flag is a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return errHelpShown
	case err != nil:
		return usageError(fmt.Sprintf("%s: %v", fs.Name(), err))
	}
	return nil
}

// parseTrainFlags reads --config, then lets every other flag override it.
func parseTrainFlags(name string, args []string, stderr io.Writer) (trainConfig, bool, error) {
	cfg := defaultTrainConfig()
	if err := readTrainConfig(args, &cfg); err != nil {
		return cfg, false, err
	}
	fs := flag.NewFlagSet("train "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	finish := addTrainFlags(fs, &cfg)
	resume := fs.Bool("resume", false, "continue from the newest checkpoint in OUT/checkpoints")
	if err := parseFlags(fs, args); err != nil {
		return cfg, false, err
	}
	finish()
	if cfg.Bundle == "" || cfg.Data == "" || cfg.Out == "" {
		return cfg, false, usageError("train: --bundle, --data and --out are required (flags or config)")
	}
	return cfg, *resume, nil
}

// readTrainConfig decodes the --config file named in args (if any) into
// dst, rejecting unknown fields.
func readTrainConfig(args []string, dst any) error {
	for i, a := range args {
		if (a == "--config" || a == "-config") && i+1 < len(args) {
			raw, err := os.ReadFile(args[i+1])
			if err != nil {
				return fmt.Errorf("train: config: %w", err)
			}
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(dst); err != nil {
				return usageError(fmt.Sprintf("train: config %s: %v", args[i+1], err))
			}
		}
	}
	return nil
}

// addTrainFlags registers the shared settings of cfg as flags; call the
// returned finish after fs.Parse to store the list-valued ones.
func addTrainFlags(fs *flag.FlagSet, cfg *trainConfig) (finish func()) {
	fs.String("config", "", "JSON file with the settings below")
	fs.StringVar(&cfg.Bundle, "bundle", cfg.Bundle, "model bundle to start from")
	fs.StringVar(&cfg.Data, "data", cfg.Data, "OmniMedVQA items (JSON or JSONL) to train on")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "output folder")
	fs.IntVar(&cfg.Steps, "steps", cfg.Steps, "number of updates")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "peak learning rate")
	fs.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "warm-up updates")
	fs.StringVar(&cfg.Decay, "decay", cfg.Decay, "learning-rate decay: constant, linear or cosine")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "rows per step")
	lengths := intsFlag(cfg.Lengths)
	fs.Var(&lengths, "lengths", "comma-separated bucket lengths")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed (data order, new heads)")
	fs.IntVar(&cfg.CheckpointEvery, "checkpoint_every", cfg.CheckpointEvery, "updates between checkpoints")
	freeze := strings.Join(cfg.Freeze, ",")
	fs.StringVar(&freeze, "freeze", freeze, "comma-separated parameter-name prefixes or modules (vision, embeddings, decoder, head) to keep fixed")
	fs.BoolVar(&cfg.TrainVision, "train_vision", cfg.TrainVision, "train the vision encoder too (the train graph runs it on each row's pixels)")
	fs.IntVar(&cfg.Threads, "threads", cfg.Threads, "ONNX Runtime intra-op threads (0: ORT's choice)")
	fs.IntVar(&cfg.MaxItems, "max_items", cfg.MaxItems, "use at most this many items (0: all)")
	fs.Float64Var(&cfg.RankWeight, "rank_weight", cfg.RankWeight, "reward: weight of the pairwise ranking term (0: MSE only)")
	return func() {
		cfg.Lengths = lengths
		cfg.Freeze = nil
		if freeze != "" {
			cfg.Freeze = strings.Split(freeze, ",")
		}
	}
}

// engine returns the engine config of a run of objective obj.
func (c trainConfig) engine(obj train.Objective, loss train.LossConfig) train.EngineConfig {
	return train.EngineConfig{Objective: obj, Freeze: c.Freeze, TrainVision: c.TrainVision, Loss: loss,
		Session: runtime.SessionOptions{IntraOpThreads: c.Threads}}
}

// intsFlag is a comma-separated list of ints.
type intsFlag []int

func (f *intsFlag) String() string {
	parts := make([]string, len(*f))
	for i, v := range *f {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (f *intsFlag) Set(s string) error {
	var out []int
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("bad length %q", p)
		}
		out = append(out, v)
	}
	*f = out
	return nil
}

// load reads the config's items (at most MaxItems) and its starting bundle.
func (cfg trainConfig) load(ctx context.Context) ([]data.Item, *models.Bundle, error) {
	items, err := data.Load(cfg.Data)
	if err != nil {
		return nil, nil, err
	}
	if cfg.MaxItems > 0 && len(items) > cfg.MaxItems {
		items = items[:cfg.MaxItems]
	}
	src, err := models.Load(ctx, cfg.Bundle)
	if err != nil {
		return nil, nil, err
	}
	return items, src, nil
}

func trainSupervised(ctx context.Context, obj train.Objective, cfg trainConfig, resume bool, stdout, stderr io.Writer) (err error) {
	items, src, err := cfg.load(ctx)
	if err != nil {
		return err
	}
	if obj == train.Reward {
		if src, err = train.RewardBundle(ctx, src, filepath.Join(cfg.Out, "init_bundle"), cfg.Seed); err != nil {
			return err
		}
	}
	env, err := runtime.Open(ctx, runtime.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Close()) }()
	vlm, err := models.Open(ctx, src.Dir, models.VLMOptions{Env: env, IntraOpThreads: cfg.Threads})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, vlm.Close()) }()
	prep := train.NewPrepFor(vlm, cfg.engine(obj, train.LossConfig{}))
	var rows []train.Row
	if obj == train.SFT {
		rows, err = prep.SFTRows(ctx, items)
	} else {
		var samples []train.Sample
		if samples, err = train.GradedSamples(items, cfg.Seed); err == nil {
			rows, err = prep.RewardRows(ctx, samples)
		}
	}
	if err != nil {
		return err
	}
	return runLoop(ctx, obj, cfg, resume, src, env, prep.Tokens(), rows, stdout, stderr)
}

func runLoop(ctx context.Context, obj train.Objective, cfg trainConfig, resume bool, src *models.Bundle, env *runtime.Env,
	tok train.Tokens, rows []train.Row, stdout, stderr io.Writer) (err error) {
	var loss train.LossConfig
	if obj == train.Reward {
		loss.RankWeight = cfg.RankWeight
	}
	t, err := train.NewTrainer(env, src, cfg.engine(obj, loss))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, t.Close()) }()
	_, err = train.Supervised(ctx, t.Engine, tok, rows, train.RunConfig{Steps: cfg.Steps,
		Schedule: train.Schedule{LR: cfg.LR, Warmup: cfg.Warmup, Decay: cfg.Decay},
		Buckets:  train.Buckets{Batch: cfg.Batch, Lengths: cfg.Lengths}, Seed: cfg.Seed, OutDir: cfg.Out,
		CheckpointEvery: cfg.CheckpointEvery, Resume: resume, Progress: stderr})
	if err != nil {
		return err
	}
	b, err := t.WriteBundle(ctx, filepath.Join(cfg.Out, train.DirBundle))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained %s for %d steps; bundle %s, metrics %s, curves %s\n", obj, t.State.Step, b.Dir,
		filepath.Join(cfg.Out, train.FileMetrics), filepath.Join(cfg.Out, train.FileCurves))
	return nil
}
