package models

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime/generate"
	"github.com/medgr2/medgr2/tokenizer"
)

// ErrUnparsed: a generator completion is not a question in the sample
// format (see ParseSample).
var ErrUnparsed = errors.New("models: generated text is not a sample")

// ParseError reports a generator completion that cannot be parsed; it
// wraps ErrUnparsed and keeps the text.
type ParseError struct {
	Reason string // what is missing or malformed
	Text   string // the completion
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("%v: %s", ErrUnparsed, e.Reason)
}

// Unwrap returns ErrUnparsed.
func (e *ParseError) Unwrap() error { return ErrUnparsed }

// SampleFormat is the layout the generator writes (and the instruction
// shows it), one multiple-choice sample with reasoning:
//
//	Question: <question>
//	A. <option>
//	B. <option>
//	C. <option>
//	D. <option>
//	<think><reasoning></think><answer><letter></answer>
//
// Two to four options; the answer letter names one of them.
const SampleFormat = "Question: …\nA. …\nB. …\nC. …\nD. …\n<think>…</think><answer>X</answer>"

// GeneratorInstruction returns the user message that asks the generator
// for one sample about an image of the given modality from the given
// dataset (both may be empty).
func GeneratorInstruction(modality, dataset string) string {
	var b strings.Builder
	b.WriteString("Write one multiple-choice question about this medical image")
	if modality != "" {
		fmt.Fprintf(&b, " (%s)", modality)
	}
	if dataset != "" {
		fmt.Fprintf(&b, " from the %s dataset", dataset)
	}
	b.WriteString(", with four options, your reasoning and the correct letter, in exactly this format:\n")
	b.WriteString(SampleFormat)
	return b.String()
}

// GeneratorRequest asks for one synthetic sample about an image.
type GeneratorRequest struct {
	Pixels     *preprocessing.Pixels // processed image (VLM.ProcessImage); nil: text only
	Modality   string                // e.g. "X-Ray"; copied to the item's modality_type
	Dataset    string                // e.g. "PneumoniaMNIST"; copied to dataset
	ImagePath  string                // copied to the item's image_path
	QuestionID string                // the item's question_id; "" gives "gen-<index>"
	// Seed is the request's sampling seed, added to ReasonOptions.Seed:
	// requests with equal seeds draw the same sample, whatever else is in
	// the batch.
	Seed uint64
}

// Sample is one generated sample.
type Sample struct {
	// Item is the parsed question (valid when Err is nil).
	Item data.Item
	// Reasoning is the text between <think> and </think>.
	Reasoning string
	// Text is the raw completion, special tokens removed.
	Text string
	// Tokens and LogProbs are the generated ids and their log-probs.
	Tokens   []int
	LogProbs []float32
	// Err is a *ParseError when the completion is not a sample; such
	// samples are reported, not dropped, so callers can count them.
	Err error
}

// GenerateSamples writes one sample per request (batched generation with
// the KV cache, stopping after "</answer>" or at end of sequence) and
// parses each completion; unparseable ones carry a *ParseError in
// Sample.Err. The returned error is for failures of the run itself.
func (v *VLM) GenerateSamples(ctx context.Context, reqs []GeneratorRequest, o ReasonOptions) ([]Sample, error) {
	prompts := make([]Prompt, len(reqs))
	opts := make([]generate.Options, len(reqs))
	for i, r := range reqs {
		p := tokenizer.VQAPrompt{System: v.Manifest().Prompt.System,
			Question: GeneratorInstruction(r.Modality, r.Dataset), ImageTokens: r.Pixels.ImageTokens()}
		var err error
		if prompts[i], err = v.encodeChat(p, r.Pixels, ""); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		if opts[i], err = v.sampling(o, r.Seed, []string{AnswerClose}); err != nil {
			return nil, err
		}
	}
	res, err := v.Generate(ctx, prompts, opts, GenerateOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]Sample, len(reqs))
	for i, r := range res {
		text, err := v.tok.Decode(r.Tokens, true)
		if err != nil {
			return nil, fmt.Errorf("models: decode sample %d: %w", i, err)
		}
		s, perr := ParseSample(text)
		s.Tokens, s.LogProbs, s.Err = r.Tokens, r.LogProbs, perr
		if perr == nil {
			req := reqs[i]
			s.Item.QuestionID = req.QuestionID
			if s.Item.QuestionID == "" {
				s.Item.QuestionID = fmt.Sprintf("gen-%d", i)
			}
			s.Item.ModalityType, s.Item.Dataset, s.Item.ImagePath = req.Modality, req.Dataset, req.ImagePath
		}
		out[i] = s
	}
	return out, nil
}

// ParseSample parses a completion in SampleFormat into an item (question,
// options, gt_answer as the correct option's text) and its reasoning.
// Text before "Question:" and after "</answer>" is ignored. Errors are
// *ParseError values naming what is wrong; Sample.Text is set either way.
func ParseSample(text string) (Sample, error) {
	s := Sample{Text: text}
	fail := func(format string, args ...any) (Sample, error) {
		return s, &ParseError{Reason: fmt.Sprintf(format, args...), Text: text}
	}
	_, body, ok := strings.Cut(text, "Question:")
	if !ok {
		return fail("no \"Question:\"")
	}
	head, tail, ok := strings.Cut(body, ThinkOpen)
	if !ok {
		return fail("no %s after the options", ThinkOpen)
	}
	question, opts := splitOptions(head)
	if question == "" {
		return fail("empty question")
	}
	if len(opts) < 2 {
		return fail("%d options (want 2…%d, lines \"A. …\")", len(opts), data.MaxOptions)
	}
	reasoning, rest, ok := strings.Cut(tail, ThinkClose)
	if !ok {
		return fail("no %s", ThinkClose)
	}
	_, ans, ok := strings.Cut(rest, AnswerOpen)
	if !ok {
		return fail("no %s", AnswerOpen)
	}
	letter, _, ok := strings.Cut(ans, AnswerClose)
	letter = strings.TrimSpace(letter)
	if !ok || len(letter) != 1 || !strings.Contains(data.Letters[:len(opts)], letter) {
		return fail("answer %q is not one of the %d option letters", letter, len(opts))
	}
	s.Item.Question = question
	_ = s.Item.SetOptions(opts) // at most MaxOptions by splitOptions
	s.Item.GTAnswer = opts[strings.Index(data.Letters, letter)]
	s.Reasoning = strings.TrimSpace(reasoning)
	return s, nil
}

// splitOptions splits the text between "Question:" and "<think>" into the
// question and the option lines "A. …", "B. …" in letter order.
func splitOptions(head string) (string, []string) {
	lines := strings.Split(strings.TrimSpace(head), "\n")
	var q []string
	var opts []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if n := len(opts); n < data.MaxOptions && strings.HasPrefix(l, data.Letters[n:n+1]+".") {
			if o := strings.TrimSpace(l[2:]); o != "" {
				opts = append(opts, o)
				continue
			}
		}
		if len(opts) > 0 {
			break // text after the options
		}
		q = append(q, l)
	}
	return strings.TrimSpace(strings.Join(q, " ")), opts
}
