package train

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// Row is one tokenized example, ready to batch.
type Row struct {
	// IDs are the prompt tokens followed by the answer (SFT, reward) or
	// the completion (GRPO).
	IDs []int
	// AnswerStart and AnswerEnd delimit the tokens the loss covers: the
	// answer (SFT) or the completion (GRPO). The reward model reads the
	// whole row and ignores them.
	AnswerStart, AnswerEnd int
	// Weights, when set, are per-token loss weights over
	// [AnswerStart, AnswerEnd) (SFT and GRPO; the loss is their weighted
	// token mean over the batch): a row can make one token count more,
	// such as the answer letter of a generated sample. nil weighs every
	// token 1.
	Weights []float32
	// Features are the vision encoder's outputs for the row's
	// <|image_pad|> tokens, in order: [pads, hidden] flattened.
	Features []float32
	// Pixels are the row's one processed image, [patches, 1176] flattened
	// (preprocessing.Pixels.Values), fed instead of Features when the
	// vision encoder trains (EngineConfig.TrainVision; NewPrepFor fills
	// it). A row carries Features or Pixels, not both.
	Pixels []float32
	// Grids holds each image's (t, h, w) patch grid, for the mRoPE
	// positions (and, with Pixels, the encoder's grid_thw).
	Grids [][3]int64
	// Target is the reward-model regression target (the sample's level).
	Target float32
	// OldLogp and RefLogp are GRPO's per-completion-token log-probs from
	// the rollout and the reference model (length AnswerEnd−AnswerStart).
	OldLogp, RefLogp []float32
	// Advantage is the row's group-normalised advantage (GRPO).
	Advantage float32
	// Group names the item the row was made from (RewardRows sets the
	// question id); the Loader keeps rows of one non-empty Group in one
	// batch. Empty: the row is batched on its own.
	Group string
}

// Tokens describes the special tokens and sizes batching needs.
type Tokens struct {
	Pad, ImagePad int // padding and <|image_pad|> ids
	Hidden        int // decoder width (feature row length)
	Merge         int // spatial merge size (2)
	PatchDim      int // values per image patch (1176); 0 means 1176
}

// patchDim returns PatchDim, 1176 when unset.
func (t Tokens) patchDim() int {
	if t.PatchDim == 0 {
		return 3 * 2 * 14 * 14
	}
	return t.PatchDim
}

// TokensOf returns the batching settings of a bundle's manifest.
func TokensOf(m *models.Manifest) Tokens {
	return Tokens{Pad: m.SpecialTokens.PAD, ImagePad: m.SpecialTokens.ImagePad,
		Hidden: m.Architecture.HiddenSize, Merge: m.Architecture.Vision.SpatialMergeSize, PatchDim: m.Architecture.Vision.PatchDim()}
}

// Batch is one bucket's worth of input tensors. Close releases them.
type Batch struct {
	Bucket  Bucket
	Tensors []runtime.NamedTensor
	Rows    int // real rows (the rest are zero-weight padding)
}

// Close releases the tensors; it is nil-safe.
func (b *Batch) Close() error {
	if b == nil {
		return nil
	}
	var err error
	for _, t := range b.Tensors {
		err = errors.Join(err, t.Tensor.Close())
	}
	b.Tensors = nil
	return err
}

// batchArrays holds a batch's Go-side arrays before they become tensors.
type batchArrays struct {
	ids, mask, pos, labels []int64
	img, imgMask, weights  []float32
	px                     []float32 // pixel_values [B·P, PatchDim] (bucket Grid set)
	grid, imgIdx           []int64   // grid_thw [B, 3] and image_index [B, S] (bucket Grid set)
	targets, rowW, adv     []float32
	old, ref               []float32
}

// MakeBatch lays rows out as the inputs of objective obj's graph for bucket
// b: right-padded ids, attention mask, mRoPE positions, spliced image
// features, shifted labels and normalised loss weights (token mean over
// the batch for SFT and GRPO, row mean for the reward model). withRef adds
// ref_logp (GRPO with β > 0). With a bucket Grid the image part is
// pixel_values, grid_thw and image_index from Row.Pixels instead of
// image_embeds (rows without an image get a zero image, masked out). Rows
// longer than b.Length, more rows than b.Batch, rows without loss tokens,
// and rows whose image form or grid does not suit b are errors wrapping
// ErrData.
func MakeBatch(obj Objective, tok Tokens, rows []Row, b Bucket, withRef bool) (*Batch, error) {
	if len(rows) == 0 || len(rows) > b.Batch {
		return nil, fmt.Errorf("%w: %d rows for a batch of %d", ErrData, len(rows), b.Batch)
	}
	B, S, H := b.Batch, b.Length, tok.Hidden
	a := batchArrays{ids: make([]int64, B*S), mask: make([]int64, B*S), pos: make([]int64, 3*B*S),
		labels: make([]int64, B*S), img: make([]float32, B*S*H), imgMask: make([]float32, B*S),
		weights: make([]float32, B*S), targets: make([]float32, B), rowW: make([]float32, B), adv: make([]float32, B),
		old: make([]float32, B*S), ref: make([]float32, B*S)}
	if P := b.patches(); P > 0 {
		a.img = nil
		a.px, a.grid, a.imgIdx = make([]float32, B*P*tok.patchDim()), make([]int64, 3*B), make([]int64, B*S)
		for r := range B {
			copy(a.grid[3*r:3*r+3], b.Grid[:])
		}
	}
	var total float64
	for r := range B {
		if r >= len(rows) {
			a.ids[r*S], a.mask[r*S] = int64(tok.Pad), 1 // one real token so attention stays defined
			for k := range 3 {
				a.pos[k*B*S+r*S] = 0
			}
			continue
		}
		n, err := a.fillRow(obj, tok, rows[r], r, b)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", r, err)
		}
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("%w: no loss tokens in the batch", ErrData)
	}
	for i := range a.weights {
		a.weights[i] = float32(float64(a.weights[i]) / total)
	}
	for i := range rows {
		a.rowW[i] = 1 / float32(len(rows))
	}
	return a.tensors(obj, b, H, len(rows), withRef)
}

// fillRow writes row r and returns its total loss weight (SFT, GRPO: the
// number of loss tokens unless the row has Weights) or 1 (reward).
func (a *batchArrays) fillRow(obj Objective, tok Tokens, row Row, r int, b Bucket) (float64, error) {
	B, S, H := b.Batch, b.Length, tok.Hidden
	L := len(row.IDs)
	if L == 0 || L > S {
		return 0, fmt.Errorf("%w: %d tokens do not fit the bucket length %d", ErrData, L, S)
	}
	mask := make([]int64, L)
	for i := range mask {
		mask[i] = 1
	}
	pos, _, err := models.RopeIndex(row.IDs, mask, tok.ImagePad, row.Grids, tok.Merge)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrData, err)
	}
	if err := a.checkImage(tok, row, r, b); err != nil {
		return 0, err
	}
	feat, vision := 0, b.patches() > 0
	for s, id := range row.IDs {
		a.ids[r*S+s], a.mask[r*S+s] = int64(id), 1
		for k := range 3 {
			a.pos[k*B*S+r*S+s] = pos[k][s]
		}
		if id == tok.ImagePad && vision {
			a.imgIdx[r*S+s] = int64(r*b.patches()/max(tok.Merge*tok.Merge, 1) + feat)
			a.imgMask[r*S+s] = 1
			feat++
		} else if id == tok.ImagePad {
			if (feat+1)*H > len(row.Features) {
				return 0, fmt.Errorf("%w: more <|image_pad|> tokens than feature rows (%d)", ErrData, len(row.Features)/max(H, 1))
			}
			copy(a.img[(r*S+s)*H:(r*S+s+1)*H], row.Features[feat*H:(feat+1)*H])
			a.imgMask[r*S+s] = 1
			feat++
		}
	}
	if vision {
		if want := len(row.Pixels) / tok.patchDim() / max(tok.Merge*tok.Merge, 1); feat != want {
			return 0, fmt.Errorf("%w: %d <|image_pad|> tokens but the image has %d merged patches", ErrData, feat, want)
		}
	} else if feat*H != len(row.Features) {
		return 0, fmt.Errorf("%w: %d <|image_pad|> tokens but %d feature rows", ErrData, feat, len(row.Features)/max(H, 1))
	}
	for s := L; s < S; s++ {
		a.ids[r*S+s] = int64(tok.Pad)
		for k := range 3 {
			a.pos[k*B*S+r*S+s] = 1
		}
	}
	a.targets[r], a.adv[r] = row.Target, row.Advantage
	if obj == Reward {
		return 1, nil
	}
	return a.fillLoss(obj, row, r, S)
}

// checkImage checks that row's image matches the bucket's form (cached
// features without a Grid, pixels of the bucket's grid with one) and, with
// a Grid, copies its pixels into row r of pixel_values.
func (a *batchArrays) checkImage(tok Tokens, row Row, r int, b Bucket) error {
	P := b.patches()
	switch {
	case P == 0 && row.Pixels != nil:
		return fmt.Errorf("%w: the row carries pixels but the bucket has no image grid (set Bucket.Grid from ImageGrid; a frozen vision encoder needs Row.Features: NewPrep)", ErrData)
	case P == 0:
		return nil
	case row.Features != nil:
		return fmt.Errorf("%w: the row carries cached image features but the vision encoder trains (rows need Row.Pixels: NewPrepFor)", ErrData)
	case row.Pixels == nil:
		return nil // a text-only row: its zero image is masked out
	case len(row.Grids) != 1:
		return fmt.Errorf("%w: a row with pixels holds %d images; a trainable vision encoder takes one per row", ErrData, len(row.Grids))
	case row.Grids[0] != b.Grid:
		return fmt.Errorf("%w: image grid %v differs from the batch's %v: a trainable vision encoder needs one image size per run",
			ErrData, row.Grids[0], b.Grid)
	case len(row.Pixels) != P*tok.patchDim():
		return fmt.Errorf("%w: %d pixel values for a %v grid of %d-value patches", ErrData, len(row.Pixels), b.Grid, tok.patchDim())
	}
	copy(a.px[r*P*tok.patchDim():], row.Pixels)
	return nil
}

// fillLoss sets labels and weights: position s predicts IDs[s+1] and counts
// when s+1 lies in [AnswerStart, AnswerEnd).
func (a *batchArrays) fillLoss(obj Objective, row Row, r, S int) (float64, error) {
	if row.AnswerStart < 1 || row.AnswerEnd > len(row.IDs) || row.AnswerStart >= row.AnswerEnd {
		return 0, fmt.Errorf("%w: answer span [%d, %d) of a %d-token row is empty or starts at 0",
			ErrData, row.AnswerStart, row.AnswerEnd, len(row.IDs))
	}
	n := row.AnswerEnd - row.AnswerStart
	if obj == GRPO && (len(row.OldLogp) != n || (row.RefLogp != nil && len(row.RefLogp) != n)) {
		return 0, fmt.Errorf("%w: %d completion tokens but %d old and %d reference log-probs",
			ErrData, n, len(row.OldLogp), len(row.RefLogp))
	}
	total := float64(n)
	if row.Weights != nil {
		if len(row.Weights) != n {
			return 0, fmt.Errorf("%w: %d loss weights for %d answer tokens", ErrData, len(row.Weights), n)
		}
		total = 0
		for _, w := range row.Weights {
			if !(w >= 0) || math.IsInf(float64(w), 0) {
				return 0, fmt.Errorf("%w: loss weight %v is not a finite value ≥ 0", ErrData, w)
			}
			total += float64(w)
		}
	}
	for s := 0; s+1 < len(row.IDs); s++ {
		a.labels[r*S+s] = int64(row.IDs[s+1])
	}
	for t := row.AnswerStart; t < row.AnswerEnd; t++ {
		a.weights[r*S+t-1] = 1
		if row.Weights != nil {
			a.weights[r*S+t-1] = row.Weights[t-row.AnswerStart]
		}
		if obj == GRPO {
			a.old[r*S+t-1] = row.OldLogp[t-row.AnswerStart]
			if row.RefLogp != nil {
				a.ref[r*S+t-1] = row.RefLogp[t-row.AnswerStart]
			}
		}
	}
	return total, nil
}

func (a *batchArrays) tensors(obj Objective, b Bucket, H, rows int, withRef bool) (_ *Batch, err error) {
	B, S := int64(b.Batch), int64(b.Length)
	out := &Batch{Bucket: b, Rows: rows}
	defer func() {
		if err != nil {
			err = errors.Join(err, out.Close())
		}
	}()
	addI := func(name string, shape []int64, d []int64) {
		if err == nil {
			var t *runtime.Tensor
			t, err = runtime.NewTensor(shape, d)
			out.Tensors = append(out.Tensors, runtime.NamedTensor{Name: name, Tensor: t})
		}
	}
	addF := func(name string, shape []int64, d []float32) {
		if err == nil {
			var t *runtime.Tensor
			t, err = runtime.NewTensor(shape, d)
			out.Tensors = append(out.Tensors, runtime.NamedTensor{Name: name, Tensor: t})
		}
	}
	addI(InInputIDs, []int64{B, S}, a.ids)
	addI(InAttention, []int64{B, S}, a.mask)
	addI(InPositions, []int64{3, B, S}, a.pos)
	if P := int64(b.patches()); P > 0 {
		addF(InPixelValues, []int64{B * P, int64(len(a.px)) / (B * P)}, a.px)
		addI(InGridTHW, []int64{B, 3}, a.grid)
		addI(InImageIndex, []int64{B, S}, a.imgIdx)
	} else {
		addF(InImageEmbeds, []int64{B, S, int64(H)}, a.img)
	}
	addF(InImageMask, []int64{B, S, 1}, a.imgMask)
	switch obj {
	case SFT:
		addI(InLabels, []int64{B, S}, a.labels)
		addF(InLabelWeights, []int64{B, S}, a.weights)
	case Reward:
		addF(InTargets, []int64{B}, a.targets)
		addF(InRowWeights, []int64{B}, a.rowW)
	case GRPO:
		addI(InLabels, []int64{B, S}, a.labels)
		addF(InLabelWeights, []int64{B, S}, a.weights)
		addF(InOldLogp, []int64{B, S}, a.old)
		addF(InAdvantages, []int64{B, 1}, a.adv)
		if withRef {
			addF(InRefLogp, []int64{B, S}, a.ref)
		}
	default:
		return nil, fmt.Errorf("%w: unknown objective %q", ErrConfig, obj)
	}
	return out, err
}

// Buckets chooses static (batch, length) shapes: every step has Batch rows
// and the smallest of Lengths that holds its longest row.
type Buckets struct {
	Batch   int   // rows per step
	Lengths []int // allowed row lengths, ascending
}

// For returns the bucket for a row of n tokens, or an error wrapping
// ErrData when no length is large enough.
func (bs Buckets) For(n int) (Bucket, error) {
	for _, l := range bs.Lengths {
		if n <= l {
			return Bucket{Batch: bs.Batch, Length: l}, nil
		}
	}
	return Bucket{}, fmt.Errorf("%w: a %d-token row is longer than the largest bucket %v", ErrData, n, bs.Lengths)
}

// validate checks the bucket settings.
func (bs Buckets) validate() error {
	if bs.Batch <= 0 || len(bs.Lengths) == 0 || !slices.IsSorted(bs.Lengths) || bs.Lengths[0] < 2 {
		return fmt.Errorf("%w: buckets need batch ≥ 1 and ascending lengths ≥ 2, got %d × %v", ErrConfig, bs.Batch, bs.Lengths)
	}
	return nil
}
