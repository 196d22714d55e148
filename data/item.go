package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Letters are the option letters of OmniMedVQA items, in order.
const Letters = "ABCD"

// MaxOptions is the largest number of options an item may carry (A–D).
const MaxOptions = len(Letters)

// Item is one OmniMedVQA multiple-choice question. The JSON field names are
// OmniMedVQA's own, so a real OmniMedVQA QA file loads unchanged. Fields the
// format does not define are kept in Extra and written back by Save.
type Item struct {
	QuestionID   string `json:"question_id"`
	Dataset      string `json:"dataset"`
	QuestionType string `json:"question_type"`
	ModalityType string `json:"modality_type"`
	Question     string `json:"question"`
	OptionA      string `json:"option_A,omitempty"`
	OptionB      string `json:"option_B,omitempty"`
	OptionC      string `json:"option_C,omitempty"`
	OptionD      string `json:"option_D,omitempty"`
	// GTAnswer is the text of the correct option, as OmniMedVQA stores it
	// (not its letter).
	GTAnswer string `json:"gt_answer"`
	// ImagePath is the image file relative to the folder of the JSON file
	// the item was read from.
	ImagePath string `json:"image_path"`
	// Split is "train", "validation" or "test" in benchmarks this project
	// builds; empty in OmniMedVQA's own files.
	Split string `json:"split,omitempty"`
	// Extra holds any other JSON fields of the item, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
	// Root is the folder of the file the item was loaded from; ImageFile
	// resolves ImagePath against it. It is not serialised.
	Root string `json:"-"`
}

// knownFields are the JSON keys Item maps to struct fields.
var knownFields = map[string]bool{
	"question_id": true, "dataset": true, "question_type": true, "modality_type": true,
	"question": true, "option_A": true, "option_B": true, "option_C": true, "option_D": true,
	"gt_answer": true, "image_path": true, "split": true,
}

// itemFields is Item without its methods, so (un)marshalling does not recurse.
type itemFields Item

// UnmarshalJSON decodes an OmniMedVQA item, keeping unknown fields in Extra.
func (it *Item) UnmarshalJSON(b []byte) error {
	var f itemFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for k, v := range raw {
		if knownFields[k] {
			continue
		}
		if f.Extra == nil {
			f.Extra = map[string]json.RawMessage{}
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return err
		}
		f.Extra[k] = c.Bytes()
	}
	*it = Item(f)
	return nil
}

// MarshalJSON encodes the item with OmniMedVQA's field names, the known fields
// first in a fixed order and Extra fields after them sorted by key, so the
// output is deterministic.
func (it Item) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(itemFields(it))
	if err != nil {
		return nil, err
	}
	if len(it.Extra) == 0 {
		return b, nil
	}
	keys := make([]string, 0, len(it.Extra))
	for k := range it.Extra {
		if !knownFields[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1])
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		if !json.Valid(it.Extra[k]) {
			return nil, fmt.Errorf("data: extra field %q is not valid JSON", k)
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(it.Extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// Options returns the option texts present, in letter order (A, B, then C
// and D where present). It stops at the first empty option.
func (it Item) Options() []string {
	all := [MaxOptions]string{it.OptionA, it.OptionB, it.OptionC, it.OptionD}
	out := make([]string, 0, MaxOptions)
	for _, o := range all {
		if o == "" {
			break
		}
		out = append(out, o)
	}
	return out
}

// SetOptions stores opts as option_A… in order and clears the rest. It
// returns ErrTooManyOptions if opts has more than MaxOptions entries.
func (it *Item) SetOptions(opts []string) error {
	if len(opts) > MaxOptions {
		return fmt.Errorf("%w: %d", ErrTooManyOptions, len(opts))
	}
	var all [MaxOptions]string
	copy(all[:], opts)
	it.OptionA, it.OptionB, it.OptionC, it.OptionD = all[0], all[1], all[2], all[3]
	return nil
}

// DedupeOptions drops every option that repeats an earlier one (compared
// as Validate compares them, ignoring case and surrounding space), keeping
// the first, and returns how many it dropped. GTAnswer is set to the text
// of the kept option it matches, so an answer that named a repeat names
// the first occurrence. A generator that writes one option twice gives a
// valid item this way when at least two distinct options remain. Items
// with a gap in their options are left as they are.
func (it *Item) DedupeOptions() int {
	opts := it.Options()
	all := [MaxOptions]string{it.OptionA, it.OptionB, it.OptionC, it.OptionD}
	for _, o := range all[len(opts):] {
		if o != "" {
			return 0 // a gap: left for Validate to report
		}
	}
	kept := make([]string, 0, len(opts))
	seen := map[string]string{} // normalised text → kept text
	for _, o := range opts {
		k := strings.ToLower(strings.TrimSpace(o))
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = o
		kept = append(kept, o)
	}
	dropped := len(opts) - len(kept)
	if dropped == 0 {
		return 0
	}
	_ = it.SetOptions(kept) // fewer than before, so at most MaxOptions
	if o, ok := seen[strings.ToLower(strings.TrimSpace(it.GTAnswer))]; ok {
		it.GTAnswer = o
	}
	return dropped
}

// AnswerIndex returns the index (0 = A) of the option whose text is
// GTAnswer: an exact match first, then one ignoring case and surrounding
// space. It returns ErrAnswerNotInOptions if no option matches.
func (it Item) AnswerIndex() (int, error) {
	opts := it.Options()
	for i, o := range opts {
		if o == it.GTAnswer {
			return i, nil
		}
	}
	gt := strings.ToLower(strings.TrimSpace(it.GTAnswer))
	for i, o := range opts {
		if strings.ToLower(strings.TrimSpace(o)) == gt {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: %q", ErrAnswerNotInOptions, it.GTAnswer)
}

// AnswerLetter returns the letter of the correct option ("A"…"D").
func (it Item) AnswerLetter() (string, error) {
	i, err := it.AnswerIndex()
	if err != nil {
		return "", err
	}
	return Letters[i : i+1], nil
}

// ImageFile returns the image path resolved against the folder of the file
// the item came from (Root); an absolute ImagePath is returned unchanged.
func (it Item) ImageFile() string {
	if it.ImagePath == "" || filepath.IsAbs(it.ImagePath) || it.Root == "" {
		return it.ImagePath
	}
	return filepath.Join(it.Root, filepath.FromSlash(it.ImagePath))
}

// Validate checks the item is a well-formed multiple-choice question: an id,
// a question, 2–4 options without gaps or duplicates, and a gt_answer that is
// one of them. Errors wrap the package's sentinel errors.
func (it Item) Validate() error {
	if strings.TrimSpace(it.QuestionID) == "" {
		return fmt.Errorf("%w: question_id", ErrMissingField)
	}
	if strings.TrimSpace(it.Question) == "" {
		return fmt.Errorf("%w: question", ErrMissingField)
	}
	all := [MaxOptions]string{it.OptionA, it.OptionB, it.OptionC, it.OptionD}
	n := len(it.Options())
	for i := n; i < MaxOptions; i++ {
		if all[i] != "" {
			return fmt.Errorf("%w: option_%c is set but option_%c is empty", ErrOptionGap, Letters[i], Letters[n])
		}
	}
	if n == 0 {
		return ErrNoOptions
	}
	if n < 2 {
		return fmt.Errorf("%w: only %d option", ErrTooFewOptions, n)
	}
	seen := map[string]bool{}
	for _, o := range it.Options() {
		k := strings.ToLower(strings.TrimSpace(o))
		if seen[k] {
			return fmt.Errorf("%w: %q", ErrDuplicateOption, o)
		}
		seen[k] = true
	}
	if strings.TrimSpace(it.GTAnswer) == "" {
		return fmt.Errorf("%w: gt_answer", ErrMissingField)
	}
	if _, err := it.AnswerIndex(); err != nil {
		return err
	}
	return nil
}

// Sentinel errors for malformed items; ItemError wraps them with the file and
// index of the item.
var (
	ErrMissingField       = errors.New("data: missing field")
	ErrNoOptions          = errors.New("data: item has no options")
	ErrTooFewOptions      = errors.New("data: item has fewer than 2 options")
	ErrTooManyOptions     = errors.New("data: more than 4 options")
	ErrOptionGap          = errors.New("data: options are not contiguous")
	ErrDuplicateOption    = errors.New("data: duplicate option text")
	ErrAnswerNotInOptions = errors.New("data: gt_answer is not among the options")
	ErrImageMissing       = errors.New("data: image file missing")
	ErrBadJSON            = errors.New("data: malformed JSON")
	ErrDuplicateID        = errors.New("data: duplicate question_id")
)

// ItemError reports one malformed item: the file, its index (0-based
// position in a JSON array, or 0-based line number in JSONL), and the cause.
type ItemError struct {
	File  string // file the item was read from
	Index int    // 0-based array index or JSONL line
	ID    string // question_id, when it could be read
	Err   error  // the cause; wraps one of the Err* sentinels
}

// Error formats the error as "file[index] (id): cause".
func (e *ItemError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("%s[%d] (%s): %v", e.File, e.Index, e.ID, e.Err)
	}
	return fmt.Sprintf("%s[%d]: %v", e.File, e.Index, e.Err)
}

// Unwrap returns the cause.
func (e *ItemError) Unwrap() error { return e.Err }
