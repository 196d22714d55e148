package train

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// TrainedParams returns the parameters an engine of cfg updates: the
// objective's decoder parameters (DecoderParams; the reward head too for
// Reward), and the vision encoder's when VisionTrained, less every one
// that cfg.Freeze names (a module or a name prefix), in file order.
func TrainedParams(cfg EngineConfig) []string {
	var out []string
	pre := freezePrefixes(cfg)
	for _, p := range graphParams(cfg) {
		if !frozen(p, pre) {
			out = append(out, p)
		}
	}
	return out
}

// frozen reports whether name starts with one of the non-empty prefixes.
func frozen(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Trainer is a bundle's weights loaded into a State and the Engine that
// updates them. NewTrainer is the one constructor every caller (the
// `medgr2 train` commands, the pipeline) uses, so the frozen parameters,
// the state and the train-step graphs always agree.
type Trainer struct {
	Bundle *models.Bundle // the bundle the weights were read from
	State  *State         // the weights and AdamW moments, owned by the Trainer
	Engine *Engine        // the train-step sessions over State, owned by the Trainer
}

// NewTrainer reads src's weights and returns a Trainer whose state trains
// TrainedParams(cfg) and keeps every other weight (the vision encoder
// unless cfg.TrainVision, and the parameters cfg.Freeze names) fixed. cfg.Arch is taken from src's
// manifest. The Trainer does not own env; Close releases the rest.
func NewTrainer(env *runtime.Env, src *models.Bundle, cfg EngineConfig) (_ *Trainer, err error) {
	if src == nil {
		return nil, fmt.Errorf("%w: trainer needs a bundle", ErrConfig)
	}
	cfg.Arch = src.Manifest.Architecture
	if cfg.Objective == Reward && !src.Manifest.HasRole(models.RoleReward) {
		return nil, fmt.Errorf("%w: %s is not a reward-model bundle (see RewardBundle)", ErrConfig, src.Dir)
	}
	if err := validateFreeze(cfg); err != nil {
		return nil, err
	}
	params := TrainedParams(cfg)
	if len(params) == 0 {
		return nil, fmt.Errorf("%w: freeze %q leaves no parameter to train", ErrConfig, cfg.Freeze)
	}
	ws, err := BundleWeights(src)
	if err != nil {
		return nil, err
	}
	st, err := NewState(ws, params)
	if err != nil {
		return nil, err
	}
	eng, err := NewEngine(env, cfg, st)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return &Trainer{Bundle: src, State: st, Engine: eng}, nil
}

// Close releases the engine and the state. It is nil-safe.
func (t *Trainer) Close() error {
	if t == nil {
		return nil
	}
	return errors.Join(t.Engine.Close(), t.State.Close())
}

// WriteBundle writes the current weights as a copy of the source bundle
// in dir (see the package function WriteBundle) and loads it back.
func (t *Trainer) WriteBundle(ctx context.Context, dir string) (*models.Bundle, error) {
	return WriteBundle(ctx, t.Bundle, dir, t.State.Weights())
}
