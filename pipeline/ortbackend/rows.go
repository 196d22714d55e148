package ortbackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/tokenizer"
	"github.com/medgr2/medgr2/train"
)

// Target returns the text an example teaches a role: for the VQA policy
// "<answer>X</answer>" (the fast path reads the letter right after
// "<answer>", so the policy is trained to put it there), for the reward
// model the full response as models.RewardResponse shows it when scoring,
// and for the generator the whole sample in models.SampleFormat.
func Target(role pipeline.Role, ex pipeline.Example) string {
	switch role {
	case pipeline.RoleGenerator:
		return pipeline.SampleText(ex)
	case pipeline.RoleReward:
		return models.RewardResponse(ex.Item.Options(), Response(ex))
	}
	letter, _ := ex.Item.AnswerLetter()
	return models.AnswerOpen + letter + models.AnswerClose
}

// chatPrompt returns the chat prompt of an example for a role, as the
// models build it at inference, with the answer set to Target.
func chatPrompt(v *models.VLM, role pipeline.Role, ex pipeline.Example, imageTokens int) tokenizer.VQAPrompt {
	if role == pipeline.RoleGenerator {
		return tokenizer.VQAPrompt{System: v.Manifest().Prompt.System, ImageTokens: imageTokens,
			Question: models.GeneratorInstruction(ex.Item.ModalityType, ex.Item.Dataset), Answer: Target(role, ex)}
	}
	p := v.VQAPrompt(models.VQARequest{Question: ex.Item.Question, Options: ex.Item.Options()}, imageTokens)
	p.Answer = Target(role, ex)
	return p
}

// buildRows tokenizes examples for a role and computes their image
// features with v's (frozen) vision encoder, or, when the encoder trains
// (vision), keeps their pixels for the train graph. targets, when not
// nil, are the reward levels.
func buildRows(ctx context.Context, v *models.VLM, role pipeline.Role, ex []pipeline.Example, targets []float64, vision bool) ([]train.Row, error) {
	rows := make([]train.Row, 0, len(ex))
	for lo := 0; lo < len(ex); lo += batchSize {
		part := ex[lo:min(lo+batchSize, len(ex))]
		pxs := make([]*preprocessing.Pixels, len(part))
		for i, e := range part {
			px, err := pixels(v, e.Item.ImageFile())
			if err != nil {
				return nil, fmt.Errorf("example %s: %w", e.Item.QuestionID, err)
			}
			pxs[i] = px
		}
		feats := make([][]float32, len(pxs))
		if !vision {
			var err error
			if feats, err = imageFeatures(ctx, v, pxs); err != nil {
				return nil, err
			}
		}
		for i, e := range part {
			row, err := encodeRow(v, role, e, pxs[i], feats[i])
			if err != nil {
				return nil, fmt.Errorf("example %s: %w", e.Item.QuestionID, err)
			}
			if targets != nil {
				row.Target = float32(targets[lo+i])
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// encodeRow tokenizes one example; the row ends at the answer's closing
// <|im_end|>, as the reward model reads it at inference.
func encodeRow(v *models.VLM, role pipeline.Role, e pipeline.Example, px *preprocessing.Pixels, feats []float32) (train.Row, error) {
	tokens := imageTokens(px)
	var row train.Row
	if role == pipeline.RoleVQA {
		ids, start, err := fastPathIDs(v, e, tokens)
		if err != nil {
			return train.Row{}, err
		}
		row = train.Row{IDs: ids, AnswerStart: start, AnswerEnd: len(ids)}
	} else {
		enc, err := v.Tokenizer().EncodePrompt(chatPrompt(v, role, e, tokens))
		if err != nil {
			return train.Row{}, fmt.Errorf("%w: %w", pipeline.ErrData, err)
		}
		row = train.Row{IDs: enc.IDs[:enc.AnswerEnd], AnswerStart: enc.AnswerStart, AnswerEnd: enc.AnswerEnd}
	}
	row.Features = feats
	if px != nil {
		row.Grids = [][3]int64{px.GridTHW}
		if feats == nil {
			row.Pixels = px.Values
		}
	}
	return row, nil
}

// weighAnswer gives each row's answer letter (answerLetter) loss weight
// w and every other answer token weight 1. A row without "<answer>" in
// its span is an error.
func weighAnswer(v *models.VLM, rows []train.Row, w float32) error {
	answer, err := v.AnswerToken()
	if err != nil {
		return fmt.Errorf("%w: %w", pipeline.ErrData, err)
	}
	for i := range rows {
		r := &rows[i]
		at := answerLetter(*r, answer)
		if at < 0 {
			return fmt.Errorf("%w: row %d has no %s before its last token", pipeline.ErrData, i, models.AnswerOpen)
		}
		r.Weights = make([]float32, r.AnswerEnd-r.AnswerStart)
		for t := range r.Weights {
			r.Weights[t] = 1
		}
		r.Weights[at-r.AnswerStart] = w
	}
	return nil
}

// answerLetter returns the index in r.IDs of the token after the last
// answer token (the "<answer>" id) of r's answer span, or −1.
func answerLetter(r train.Row, answer int) int {
	for t := r.AnswerEnd - 2; t >= r.AnswerStart; t-- {
		if r.IDs[t] == answer {
			return t + 1
		}
	}
	return -1
}

// imageFeatures runs the vision encoder once over a batch of images and
// returns each image's [tokens·hidden] features (nil for a nil image).
func imageFeatures(ctx context.Context, v *models.VLM, pxs []*preprocessing.Pixels) (_ [][]float32, err error) {
	var vals []float32
	var grid []int64
	patches, dim := 0, 0
	for _, p := range pxs {
		if p != nil {
			vals = append(vals, p.Values...)
			grid = append(grid, p.GridTHW[:]...)
			patches, dim = patches+p.NumPatches, p.PatchDim
		}
	}
	out := make([][]float32, len(pxs))
	if patches == 0 {
		return out, nil
	}
	pxT, err := runtime.NewTensor([]int64{int64(patches), int64(dim)}, vals)
	if err != nil {
		return nil, fmt.Errorf("%w: pixel_values: %w", ErrBackend, err)
	}
	gridT, err := runtime.NewTensor([]int64{int64(len(grid) / 3), 3}, grid)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("%w: grid_thw: %w", ErrBackend, err), pxT.Close())
	}
	defer func() { err = errors.Join(err, runtime.CloseAll(pxT, gridT)) }()
	vision, _, _ := v.Sessions()
	res, err := vision.Run(ctx, []runtime.NamedTensor{{Name: models.PixelValues, Tensor: pxT},
		{Name: models.GridTHW, Tensor: gridT}}, []string{models.ImageFeatures})
	if err != nil {
		return nil, fmt.Errorf("%w: vision encoder: %w", ErrBackend, err)
	}
	defer func() { err = errors.Join(err, runtime.CloseAll(res...)) }()
	all, err := runtime.Data[float32](res[0])
	if err != nil {
		return nil, fmt.Errorf("%w: image_features: %w", ErrBackend, err)
	}
	H := v.Manifest().Architecture.HiddenSize
	at := 0
	for i, p := range pxs {
		if p == nil {
			continue
		}
		n := p.ImageTokens() * H
		if at+n > len(all) {
			return nil, fmt.Errorf("%w: vision encoder returned %d values, want at least %d", ErrBackend, len(all), at+n)
		}
		out[i] = append([]float32(nil), all[at:at+n]...)
		at += n
	}
	return out, nil
}

// imageTokens is the number of <|image_pad|> tokens of an image (0 for none).
func imageTokens(px *preprocessing.Pixels) int {
	if px == nil {
		return 0
	}
	return px.ImageTokens()
}

// fastPrompt returns the fast path's prompt ids, exactly as
// models.VLM.AnswerFast builds them: the chat prompt without an answer,
// then "<answer>"; the option letter is the next token.
func fastPrompt(v *models.VLM, e pipeline.Example, imageTokens int) ([]int, error) {
	tok := v.Tokenizer()
	p := v.VQAPrompt(models.VQARequest{Question: e.Item.Question, Options: e.Item.Options()}, imageTokens)
	enc, err := tok.EncodePrompt(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrData, err)
	}
	ids, err := tok.AppendEncode(enc.IDs, models.FastAnswerPrefix)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrData, err)
	}
	return ids, nil
}

// fastPathIDs returns the VQA policy's training ids: the fast prompt, the
// answer letter's single token, "</answer>" and <|im_end|>, encoded piece
// by piece so the letter is a token of its own as the fast path reads it.
// start is the index of the letter.
func fastPathIDs(v *models.VLM, e pipeline.Example, imageTokens int) (ids []int, start int, err error) {
	tok := v.Tokenizer()
	gold, err := e.Item.AnswerIndex()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", pipeline.ErrData, err)
	}
	letters, err := v.LetterTokens(len(e.Item.Options()))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrBackend, err)
	}
	ids, err = fastPrompt(v, e, imageTokens)
	if err != nil {
		return nil, 0, err
	}
	start = len(ids)
	ids = append(ids, letters[gold])
	if ids, err = tok.AppendEncode(ids, models.AnswerClose); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", pipeline.ErrData, err)
	}
	end, ok := tok.TokenID(tokenizer.ImEnd)
	if !ok {
		return nil, 0, fmt.Errorf("%w: tokenizer has no %s", ErrBackend, tokenizer.ImEnd)
	}
	return append(ids, end), start, nil
}
