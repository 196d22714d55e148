package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/medgr2/medgr2/graph"
)

// Checkpoint file names inside a step folder "step-NNNNNNNN".
const (
	CheckpointWeights   = "model.safetensors"     // every parameter (trained and frozen)
	CheckpointOptimizer = "optimizer.safetensors" // AdamW moments "<param>.m", "<param>.v"
	CheckpointState     = "trainer_state.json"    // CheckpointMeta
	checkpointPrefix    = "step-"
)

// CheckpointMeta is the trainer state saved beside the tensors: enough to
// continue a run bit for bit.
type CheckpointMeta struct {
	Objective Objective       `json:"objective"`
	Step      int             `json:"step"`            // completed updates
	Params    []string        `json:"trained_params"`  // the trained parameters, in order
	Loader    LoaderState     `json:"loader"`          // data order (RNG and cursor)
	Extra     json.RawMessage `json:"extra,omitempty"` // objective-specific state (GRPO's rollout RNG)
}

// SaveCheckpoint writes the state to dir/step-NNNNNNNN (atomically: a
// temporary folder renamed into place) and removes all but the newest keep
// checkpoints (keep ≤ 0 keeps all). It returns the folder written.
func SaveCheckpoint(dir string, st *State, meta CheckpointMeta, keep int) (string, error) {
	meta.Step, meta.Params = st.Step, st.Params
	final := filepath.Join(dir, fmt.Sprintf("%s%08d", checkpointPrefix, st.Step))
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if _, err := graph.WriteWeights(filepath.Join(tmp, CheckpointWeights), sortedTensors(st.Weights())); err != nil {
		return "", fmt.Errorf("train: checkpoint weights: %w", err)
	}
	if _, err := graph.WriteWeights(filepath.Join(tmp, CheckpointOptimizer), sortedTensors(st.Moments())); err != nil {
		return "", fmt.Errorf("train: checkpoint optimizer: %w", err)
	}
	js, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return "", fmt.Errorf("train: checkpoint state: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, CheckpointState), append(js, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("train: checkpoint state: %w", err)
	}
	if err := os.RemoveAll(final); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	return final, pruneCheckpoints(dir, keep)
}

func sortedTensors(m map[string]*graph.Tensor) []graph.NamedTensor {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]graph.NamedTensor, len(names))
	for i, n := range names {
		out[i] = graph.NamedTensor{Name: n, Tensor: m[n]}
	}
	return out
}

// listCheckpoints returns the complete step folders of dir, oldest first.
func listCheckpoints(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type cp struct {
		step int
		path string
	}
	var cps []cp
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), checkpointPrefix)
		n, err := strconv.Atoi(rest)
		if !ok || err != nil || !e.IsDir() {
			continue
		}
		cps = append(cps, cp{n, filepath.Join(dir, e.Name())})
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].step < cps[j].step })
	out := make([]string, len(cps))
	for i, c := range cps {
		out[i] = c.path
	}
	return out, nil
}

func pruneCheckpoints(dir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	cps, err := listCheckpoints(dir)
	if err != nil {
		return fmt.Errorf("train: prune checkpoints: %w", err)
	}
	for len(cps) > keep {
		if err := os.RemoveAll(cps[0]); err != nil {
			return fmt.Errorf("train: prune checkpoints: %w", err)
		}
		cps = cps[1:]
	}
	return nil
}

// LatestCheckpoint returns the newest step folder under dir, or an error
// wrapping ErrCheckpoint when there is none.
func LatestCheckpoint(dir string) (string, error) {
	cps, err := listCheckpoints(dir)
	if err != nil || len(cps) == 0 {
		return "", fmt.Errorf("%w: no checkpoint in %s (%v)", ErrCheckpoint, dir, err)
	}
	return cps[len(cps)-1], nil
}

// LoadCheckpoint reads a step folder into st (which must train the same
// parameters) and returns its metadata. A missing folder or file, a tensor
// of another shape or a different objective wraps ErrCheckpoint.
func LoadCheckpoint(path string, st *State, obj Objective) (CheckpointMeta, error) {
	var meta CheckpointMeta
	js, err := os.ReadFile(filepath.Join(path, CheckpointState))
	if err != nil {
		return meta, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if err := json.Unmarshal(js, &meta); err != nil {
		return meta, fmt.Errorf("%w: %s: %v", ErrCheckpoint, CheckpointState, err)
	}
	if meta.Objective != obj {
		return meta, fmt.Errorf("%w: %s holds a %q run, resuming %q", ErrCheckpoint, path, meta.Objective, obj)
	}
	if strings.Join(meta.Params, ",") != strings.Join(st.Params, ",") {
		return meta, fmt.Errorf("%w: %s trains %d parameters, this run %d (freeze settings differ?)", ErrCheckpoint, path, len(meta.Params), len(st.Params))
	}
	for _, f := range []string{CheckpointWeights, CheckpointOptimizer} {
		ts, _, err := graph.ReadWeights(filepath.Join(path, f))
		if err != nil {
			return meta, fmt.Errorf("%w: %w", ErrCheckpoint, err)
		}
		var errs []error
		for name, t := range ts {
			errs = append(errs, st.load(name, t))
		}
		if err := errors.Join(errs...); err != nil {
			return meta, err
		}
		if f == CheckpointOptimizer && len(ts) != 2*len(st.Params) {
			return meta, fmt.Errorf("%w: %s has %d moments, want %d", ErrCheckpoint, f, len(ts), 2*len(st.Params))
		}
	}
	st.Step = meta.Step
	return meta, nil
}
