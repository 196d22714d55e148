package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

// scoreFlags are the flags of `medgr2 score`.
type scoreFlags struct {
	model, image, question, answer, reasoning string
	options                                   optionList
	items                                     string
	batch                                     int
	device                                    runtime.Device
	dtype                                     models.DType
}

func parseScoreFlags(args []string, stderr io.Writer) (*scoreFlags, error) {
	f := &scoreFlags{}
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "reward bundle folder (default: "+defaultBundles+"/reward, or $"+envModels+"/reward)")
	fs.StringVar(&f.image, "image", "", "image file: PNG, JPEG, DICOM, … (omit for a text-only sample)")
	fs.StringVar(&f.question, "question", "", "the sample's question")
	fs.Var(&f.options, "option", "an option of the sample; repeat 2–4 times, lettered A, B, … in order")
	fs.StringVar(&f.answer, "answer", "", "the sample's answer letter (A, B, …)")
	fs.StringVar(&f.reasoning, "reasoning", "", "the sample's reasoning (the text inside <think>…</think>)")
	fs.StringVar(&f.items, "items", "", "score every item of this JSON/JSONL file instead (its \""+reasoningField+"\" field, as `medgr2 generate` writes, is the reasoning); prints one JSON line per item")
	fs.IntVar(&f.batch, "batch", 8, "with --items: items per forward pass")
	fs.Var(&f.device, "device", "execution device: auto, cpu, cuda or cuda:N")
	fs.Var(&f.dtype, "dtype", models.DTypeUsage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError(err.Error())
	}
	if f.model == "" {
		f.model = defaultBundle("reward")
	}
	single := f.question != "" || len(f.options) > 0 || f.answer != "" || f.reasoning != "" || f.image != ""
	switch {
	case fs.NArg() > 0:
		return nil, usageError(fmt.Sprintf("score: unexpected arguments %q", fs.Args()))
	case f.model == "":
		return nil, usageError("score: --model DIR is required when no default bundle is installed (" + defaultBundles + "/reward)")
	case f.items != "" && single:
		return nil, usageError("score: give --items FILE or one sample (--question, --option…, --answer), not both")
	case f.items != "" && f.batch < 1:
		return nil, usageError(fmt.Sprintf("score: --batch must be at least 1 (got %d)", f.batch))
	case f.items != "":
		return f, nil
	case f.question == "" || f.answer == "":
		return nil, usageError("score: give --question, --option (2 to 4 times) and --answer, or --items FILE")
	case len(f.options) < 2 || len(f.options) > data.MaxOptions:
		return nil, usageError(fmt.Sprintf("score: give 2 to %d --option values (got %d)", data.MaxOptions, len(f.options)))
	case len(f.answer) != 1 || !strings.Contains(data.Letters[:len(f.options)], strings.ToUpper(f.answer)):
		return nil, usageError(fmt.Sprintf("score: --answer %q is not one of the %d option letters", f.answer, len(f.options)))
	}
	return f, nil
}

// response renders a sample's reasoning and answer letter as the reward
// model reads them: "<think>…</think><answer>X</answer>".
func response(reasoning, letter string) string {
	return models.ThinkOpen + reasoning + models.ThinkClose + models.AnswerOpen + strings.ToUpper(letter) + models.AnswerClose
}

// runScore implements `medgr2 score`: a reward bundle scores one sample
// (printed as "score: S") or every item of --items (one JSON line each:
// question_id and score), on the paper's scale (about 10 correct, 6
// perturbed, 0 incoherent, −6 irrelevant).
func runScore(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	f, err := parseScoreFlags(args, stderr)
	if err != nil {
		return err
	}
	var items []data.Item
	if f.items != "" {
		if items, err = data.Load(f.items); err != nil {
			return fmt.Errorf("score: %w", err)
		}
	}
	v, err := openBundle(ctx, f.model, f.device, f.dtype, stderr)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	if f.items != "" {
		return scoreItems(ctx, v, items, f.batch, stdout)
	}
	req := models.RewardRequest{Question: f.question, Options: f.options, Response: response(f.reasoning, f.answer)}
	if req.Pixels, err = imagePixels(v, f.image); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	scores, err := v.Score(ctx, []models.RewardRequest{req})
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "score: %.4f\n", scores[0])
	return err
}

// imagePixels decodes the image at path and turns it into v's model
// input, or returns nil for "" (a text-only sample).
func imagePixels(v *models.VLM, path string) (*preprocessing.Pixels, error) {
	if path == "" {
		return nil, nil
	}
	img, _, err := preprocessing.DecodeFile(path, preprocessing.Limits{})
	if err != nil {
		return nil, err
	}
	px, err := v.ProcessImage(img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return px, nil
}

// scoredItem is one line of `medgr2 score --items`.
type scoredItem struct {
	QuestionID string  `json:"question_id"`
	Score      float32 `json:"score"`
}

// scoreItems scores items in batches of batch and writes one line each.
func scoreItems(ctx context.Context, v *models.VLM, items []data.Item, batch int, stdout io.Writer) error {
	enc := json.NewEncoder(stdout)
	for start := 0; start < len(items); start += batch {
		chunk := items[start:min(start+batch, len(items))]
		reqs := make([]models.RewardRequest, len(chunk))
		for i, it := range chunk {
			r, err := rewardRequest(v, it)
			if err != nil {
				return fmt.Errorf("score: item %s: %w", it.QuestionID, err)
			}
			reqs[i] = r
		}
		scores, err := v.Score(ctx, reqs)
		if err != nil {
			return fmt.Errorf("score: items %d–%d: %w", start, start+len(chunk)-1, err)
		}
		for i, it := range chunk {
			if err := enc.Encode(scoredItem{QuestionID: it.QuestionID, Score: scores[i]}); err != nil {
				return fmt.Errorf("score: %w", err)
			}
		}
	}
	return nil
}

// rewardRequest turns an item (and its "reasoning" field, if any) into the
// sample the reward model v judges.
func rewardRequest(v *models.VLM, it data.Item) (models.RewardRequest, error) {
	letter, err := it.AnswerLetter()
	if err != nil {
		return models.RewardRequest{}, err
	}
	var reasoning string
	if raw, ok := it.Extra[reasoningField]; ok {
		if err := json.Unmarshal(raw, &reasoning); err != nil {
			return models.RewardRequest{}, fmt.Errorf("%q field: %w", reasoningField, err)
		}
	}
	px, err := imagePixels(v, it.ImageFile())
	if err != nil {
		return models.RewardRequest{}, err
	}
	return models.RewardRequest{Pixels: px, Question: it.Question, Options: it.Options(), Response: response(reasoning, letter)}, nil
}
