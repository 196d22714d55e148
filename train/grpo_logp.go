package train

import (
	"context"
	"errors"
	"fmt"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/runtime"
)

// logpModel evaluates per-token log-probs of completions (BuildLogpGraph,
// at the engine's temperature) with either fixed weights (GRPO's frozen
// reference) or, when weights is nil, the engine state's current ones.
type logpModel struct {
	eng     *Engine
	weights map[string]*runtime.Tensor // owned; nil reads the state
	sess    map[Bucket]*runtime.Session
}

// newLogpModel keeps the decoder parameters of ws (and the vision
// encoder's when the engine trains it) as the model's weights;
// ws == nil means the engine's current parameters.
func newLogpModel(eng *Engine, ws map[string]*graph.Tensor) (_ *logpModel, err error) {
	m := &logpModel{eng: eng, sess: map[Bucket]*runtime.Session{}}
	if ws == nil {
		return m, nil
	}
	m.weights = map[string]*runtime.Tensor{}
	defer func() {
		if err != nil {
			err = errors.Join(err, m.close())
		}
	}()
	for _, name := range graphParams(EngineConfig{Arch: eng.cfg.Arch, TrainVision: VisionTrained(eng.cfg)}) {
		w, ok := ws[name]
		if !ok || w.DType != graph.Float32 {
			return nil, fmt.Errorf("%w: reference weights lack float32 %q", ErrConfig, name)
		}
		t, err := runtime.NewTensor(w.Dims, w.F32)
		if err != nil {
			return nil, fmt.Errorf("train: reference weight %q: %w", name, err)
		}
		m.weights[name] = t
	}
	return m, nil
}

// close releases the sessions and owned weights; it is nil-safe.
func (m *logpModel) close() error {
	if m == nil {
		return nil
	}
	var err error
	for _, s := range m.sess {
		err = errors.Join(err, s.Close())
	}
	for _, t := range m.weights {
		err = errors.Join(err, t.Close())
	}
	m.sess, m.weights = nil, nil
	return err
}

// param returns the tensor fed for a decoder parameter.
func (m *logpModel) param(name string) (*runtime.Tensor, bool) {
	if m.weights != nil {
		t, ok := m.weights[name]
		return t, ok
	}
	return m.eng.state.param(name)
}

// logp returns, for each row, the log-probs of its completion tokens
// (positions AnswerStart … AnswerEnd−1) under the model at the engine's
// temperature.
func (m *logpModel) logp(ctx context.Context, tok Tokens, rows []Row, b Bucket) (_ [][]float32, err error) {
	sess, err := m.session(ctx, b)
	if err != nil {
		return nil, err
	}
	batch, err := MakeBatch(GRPO, tok, rows, b, false)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, batch.Close()) }()
	ins, err := withWeights(sess, batch.Tensors, m.param)
	if err != nil {
		return nil, fmt.Errorf("train: log-prob model: %w", err)
	}
	S := b.Length
	lp := make([]float32, b.Batch*S)
	out, err := runtime.NewTensor([]int64{int64(b.Batch), int64(S)}, lp)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	if err := sess.RunInto(ctx, ins, []runtime.NamedTensor{{Name: OutLogp, Tensor: out}}); err != nil {
		return nil, fmt.Errorf("train: log-probs %d×%d: %w", b.Batch, b.Length, err)
	}
	res := make([][]float32, len(rows))
	for i, r := range rows {
		res[i] = append([]float32(nil), lp[i*S+r.AnswerStart-1:i*S+r.AnswerEnd-1]...)
	}
	return res, nil
}

// session returns the bucket's log-prob session, building it on first use.
func (m *logpModel) session(ctx context.Context, b Bucket) (*runtime.Session, error) {
	if s, ok := m.sess[b]; ok {
		return s, nil
	}
	g, err := BuildLogpGraph(m.eng.cfg.Arch, b, m.eng.cfg.Loss.Temperature)
	if err != nil {
		return nil, err
	}
	s, err := m.eng.open(ctx, g, fmt.Sprintf("logp_%dx%d", b.Batch, b.Length))
	if err != nil {
		return nil, err
	}
	m.sess[b] = s
	return s, nil
}
