package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
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

// writeAtomic writes data to path through a synced temporary file renamed
// into place, so a reader never sees a partial file.
func writeAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrState, path, err)
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
