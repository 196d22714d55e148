package tokenizer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ReadCorpus collects training text from files:
//   - a JSON array of OmniMedVQA items (omnimedvqa_text_sample.json,
//     omnimedvqa_real.json): each item's question, options and answer;
//   - a collection.json: its label names and descriptions, name, modality,
//     anatomy and task;
//   - a directory: every *.json file directly inside it, by the rules above;
//   - any other file: one text per non-empty line.
//
// The order is the order of paths (and of sorted names in a directory), so
// TrainBPE on the result is deterministic.
func ReadCorpus(ctx context.Context, paths ...string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("tokenizer: read corpus: %w", err)
		}
		texts, err := readCorpusPath(p)
		if err != nil {
			return nil, err
		}
		out = append(out, texts...)
	}
	return out, nil
}

func readCorpusPath(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read corpus: %w", err)
	}
	if !st.IsDir() {
		return readCorpusFile(p)
	}
	names, err := filepath.Glob(filepath.Join(p, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read corpus %s: %w", p, err)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		texts, err := readCorpusFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, texts...)
	}
	return out, nil
}

func readCorpusFile(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read corpus: %w", err)
	}
	if !strings.HasSuffix(p, ".json") {
		var out []string
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				out = append(out, line)
			}
		}
		return out, sc.Err()
	}
	var items []map[string]any
	if err := json.Unmarshal(data, &items); err == nil {
		return vqaTexts(items), nil
	}
	var coll map[string]any
	if err := json.Unmarshal(data, &coll); err != nil {
		return nil, fmt.Errorf("%w: corpus file %s is neither an item array nor a collection: %w", ErrTrain, p, err)
	}
	return collectionTexts(coll), nil
}

// vqaTexts returns the question, the options and the answer of each item.
func vqaTexts(items []map[string]any) []string {
	var out []string
	for _, it := range items {
		for _, k := range []string{"question", "option_A", "option_B", "option_C", "option_D", "option_E", "gt_answer"} {
			if s, ok := it[k].(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// collectionTexts returns the descriptive strings of a collection.json.
func collectionTexts(c map[string]any) []string {
	var out []string
	for _, k := range []string{"name", "modality", "anatomy", "task", "description"} {
		if s, ok := c[k].(string); ok && s != "" {
			out = append(out, s)
		}
	}
	if labels, ok := c["labels"].(map[string]any); ok {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := labels[k].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
