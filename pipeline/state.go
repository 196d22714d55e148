package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/medgr2/medgr2/internal/atomicfile"
)

// StateFile is the name of the stage state file inside Config.OutDir.
const StateFile = "state.json"

// StageRecord is what the state file keeps about a finished stage.
type StageRecord struct {
	// Hash covers the stage's config and the hashes of the stages it
	// depends on: a config change gives a new hash, so the stage and
	// everything downstream of it run again.
	Hash     string          `json:"hash"`
	Finished time.Time       `json:"finished"`
	Seconds  float64         `json:"seconds"`           // wall time of the stage
	Summary  json.RawMessage `json:"summary,omitempty"` // the stage's own summary (counts, accuracies)
}

// State is the stage state file: which stages finished, with which hash.
type State struct {
	Stages map[string]StageRecord `json:"stages"`
}

// loadState reads path; a missing file is an empty state.
func loadState(path string) (*State, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Stages: map[string]StageRecord{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, path, err)
	}
	if s.Stages == nil {
		s.Stages = map[string]StageRecord{}
	}
	return &s, nil
}

// save writes the state atomically: a temporary file in the same folder,
// synced, then renamed over path.
func (s *State) save(path string) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return writeAtomic(path, append(raw, '\n'))
}

// writeAtomic writes data to path atomically (atomicfile.Write); errors
// wrap ErrState.
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}

// writeJSON writes v as indented JSON to path, atomically.
func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("pipeline: encode %s: %w", filepath.Base(path), err)
	}
	return writeAtomic(path, append(raw, '\n'))
}

// readJSON reads path into v.
func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrData, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrData, path, err)
	}
	return nil
}
