package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/medgr2/medgr2/data/eval"
)

// writePredictions writes one JSON object per prediction.
func writePredictions(path string, preds []eval.Prediction) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("eval: %w", cerr)
		}
	}()
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, p := range preds {
		if err := enc.Encode(p); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
	}
	return bw.Flush()
}
