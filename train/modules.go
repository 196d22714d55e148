package train

import (
	"fmt"
	"slices"
	"strings"

	"github.com/medgr2/medgr2/models"
)

// Module names EngineConfig.Freeze accepts besides raw parameter-name
// prefixes.
const (
	ModuleVision     = "vision"     // the vision encoder: patch embedding, blocks, 2×2 merger ("visual.")
	ModuleEmbeddings = "embeddings" // the token embedding table ("model.embed_tokens.")
	ModuleDecoder    = "decoder"    // the decoder layers and final norm ("model.layers.", "model.norm.")
	ModuleHead       = "head"       // the LM head ("lm_head.") or the reward head ("score.")
)

// modulePrefixes maps each module name to the parameter-name prefixes it
// covers. With tie_word_embeddings the LM head is the embedding table, so
// "head" covers "model.embed_tokens." too (validateFreeze refuses naming
// only one of the two on such a model).
func modulePrefixes(module string, arch models.ArchConfig, reward bool) ([]string, bool) {
	switch module {
	case ModuleVision:
		return []string{"visual."}, true
	case ModuleEmbeddings:
		return []string{"model.embed_tokens."}, true
	case ModuleDecoder:
		return []string{"model.layers.", "model.norm."}, true
	case ModuleHead:
		switch {
		case reward:
			return []string{"score."}, true
		case arch.TieWordEmbeddings:
			return []string{"model.embed_tokens."}, true
		default:
			return []string{"lm_head."}, true
		}
	}
	return nil, false
}

// freezePrefixes expands cfg.Freeze (module names and raw prefixes) into
// parameter-name prefixes.
func freezePrefixes(cfg EngineConfig) []string {
	var out []string
	for _, f := range cfg.Freeze {
		if ps, ok := modulePrefixes(f, cfg.Arch, cfg.Objective == Reward); ok {
			out = append(out, ps...)
		} else if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// validateFreeze refuses a Freeze list that cannot be honoured: on a model
// with tie_word_embeddings (and an LM head, so not the reward objective)
// the embedding table and the LM head are one tensor, so naming exactly
// one of the modules "embeddings" and "head" is an error.
func validateFreeze(cfg EngineConfig) error {
	if !cfg.Arch.TieWordEmbeddings || cfg.Objective == Reward {
		return nil
	}
	emb, head := slices.Contains(cfg.Freeze, ModuleEmbeddings), slices.Contains(cfg.Freeze, ModuleHead)
	if emb != head {
		return fmt.Errorf("%w: freeze %q: with tie_word_embeddings the embeddings and the LM head are one tensor "+
			"(model.embed_tokens.weight); freeze both %q and %q or neither", ErrConfig, cfg.Freeze, ModuleEmbeddings, ModuleHead)
	}
	return nil
}

// VisionParams returns the vision encoder's parameters in file order.
func VisionParams(cfg models.ArchConfig) []string {
	var names []string
	for _, s := range models.WeightSpecs(cfg, false) {
		if isVision(s.Name) {
			names = append(names, s.Name)
		}
	}
	return names
}

func isVision(name string) bool { return strings.HasPrefix(name, "visual.") }

// VisionTrained reports whether cfg trains the vision encoder: TrainVision
// is set and Freeze leaves at least one vision parameter trainable. When
// it is false the train graphs have no vision part and rows carry the
// frozen encoder's cached features (Prep).
func VisionTrained(cfg EngineConfig) bool {
	if !cfg.TrainVision {
		return false
	}
	pre := freezePrefixes(cfg)
	for _, p := range VisionParams(cfg.Arch) {
		if !frozen(p, pre) {
			return true
		}
	}
	return false
}

// graphParams returns the weights an engine of cfg feeds its train graphs
// as parameters: the vision encoder's (when VisionTrained) and the
// objective's decoder parameters, in file order.
func graphParams(cfg EngineConfig) []string {
	dec := DecoderParams(cfg.Arch, cfg.Objective == Reward)
	if !VisionTrained(cfg) {
		return dec
	}
	return append(VisionParams(cfg.Arch), dec...)
}
