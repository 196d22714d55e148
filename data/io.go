package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is an on-disk layout for a list of items.
type Format int

const (
	// FormatAuto picks JSONL for files ending in ".jsonl" and a JSON array
	// otherwise (when saving), or sniffs the first byte (when loading).
	FormatAuto Format = iota
	// FormatJSON is one JSON array of items, as OmniMedVQA ships its QA files.
	FormatJSON
	// FormatJSONL is one item per line.
	FormatJSONL
)

// LoadOption changes how Load treats its input.
type LoadOption func(*loadConfig)

type loadConfig struct {
	skip        func(*ItemError) // nil: reject the file on the first bad item
	checkImages bool             // stat every item's image file
}

// SkipInvalid makes Load skip malformed items instead of failing; report, if
// not nil, is called with each skipped item's error. A file that is not JSON
// at all still fails.
func SkipInvalid(report func(*ItemError)) LoadOption {
	return func(c *loadConfig) {
		if report == nil {
			report = func(*ItemError) {}
		}
		c.skip = report
	}
}

// CheckImages makes Load verify that every item's image file exists
// (ErrImageMissing otherwise).
func CheckImages() LoadOption { return func(c *loadConfig) { c.checkImages = true } }

// Load reads OmniMedVQA items from path, a JSON array or JSONL file (sniffed
// from the first non-space byte), validates each (see Item.Validate) and sets
// Root to the file's folder. By default the first malformed item fails the
// whole load with an *ItemError naming the file and index; with SkipInvalid
// it is reported and skipped.
func Load(path string, opts ...LoadOption) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: load: %w", err)
	}
	defer f.Close()
	return Read(f, path, opts...)
}

// Read is Load from a reader; name is used in error messages and its folder
// becomes each item's Root.
func Read(r io.Reader, name string, opts ...LoadOption) ([]Item, error) {
	var cfg loadConfig
	for _, o := range opts {
		o(&cfg)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	first, err := firstByte(br)
	if err != nil {
		return nil, fmt.Errorf("data: read %s: %w", name, err)
	}
	var raws []rawItem
	if first == '[' {
		raws, err = splitArray(br, name)
	} else {
		raws, err = splitLines(br, name)
	}
	if err != nil {
		return nil, err
	}
	return decodeItems(raws, name, cfg)
}

// rawItem is one item's bytes and its index, or the error that stopped it
// from being split out.
type rawItem struct {
	index int
	raw   []byte
	err   error
}

func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return 0, fmt.Errorf("%w: empty file", ErrBadJSON)
		}
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\n' && b != '\r' && b != 0xEF && b != 0xBB && b != 0xBF {
			return b, br.UnreadByte()
		}
	}
}

func splitArray(r io.Reader, name string) ([]rawItem, error) {
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("data: %s: %w: %v", name, ErrBadJSON, err)
	}
	var out []rawItem
	for i := 0; dec.More(); i++ {
		var m json.RawMessage
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("data: %s: item %d: %w: %v", name, i, ErrBadJSON, err)
		}
		out = append(out, rawItem{index: i, raw: m})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("data: %s: %w: unterminated array: %v", name, ErrBadJSON, err)
	}
	return out, nil
}

func splitLines(r io.Reader, name string) ([]rawItem, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	var out []rawItem
	for line := 0; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		it := rawItem{index: line, raw: append([]byte(nil), b...)}
		if !json.Valid(b) {
			it.err = fmt.Errorf("%w: line is not valid JSON", ErrBadJSON)
		}
		out = append(out, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("data: read %s: %w", name, err)
	}
	return out, nil
}

func decodeItems(raws []rawItem, name string, cfg loadConfig) ([]Item, error) {
	root := filepath.Dir(name)
	items := make([]Item, 0, len(raws))
	seen := make(map[string]int, len(raws))
	for _, r := range raws {
		it, err := decodeOne(r)
		if err == nil {
			it.Root = root
			err = checkItem(it, seen, cfg)
		}
		if err != nil {
			ie := &ItemError{File: name, Index: r.index, ID: it.QuestionID, Err: err}
			if cfg.skip == nil {
				return nil, ie
			}
			cfg.skip(ie)
			continue
		}
		seen[it.QuestionID] = r.index
		items = append(items, it)
	}
	return items, nil
}

func decodeOne(r rawItem) (Item, error) {
	if r.err != nil {
		return Item{}, r.err
	}
	var it Item
	if err := json.Unmarshal(r.raw, &it); err != nil {
		return Item{}, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	return it, nil
}

func checkItem(it Item, seen map[string]int, cfg loadConfig) error {
	if err := it.Validate(); err != nil {
		return err
	}
	if prev, dup := seen[it.QuestionID]; dup {
		return fmt.Errorf("%w: also at index %d", ErrDuplicateID, prev)
	}
	if cfg.checkImages {
		if it.ImagePath == "" {
			return fmt.Errorf("%w: image_path", ErrMissingField)
		}
		if _, err := os.Stat(it.ImageFile()); err != nil {
			return fmt.Errorf("%w: %s", ErrImageMissing, it.ImageFile())
		}
	}
	return nil
}

// Save writes items to path atomically (a temporary file renamed into
// place), as JSONL when path ends in ".jsonl" and as an indented JSON array
// otherwise. The output depends only on the items, so equal inputs give
// equal bytes.
func Save(path string, items []Item) error {
	format := FormatJSON
	if strings.EqualFold(filepath.Ext(path), ".jsonl") {
		format = FormatJSONL
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("data: save: %w", err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	err = Write(bw, items, format)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("data: save %s: %w", path, err)
	}
	return nil
}

// Write encodes items to w in the given format (FormatAuto means JSON).
func Write(w io.Writer, items []Item, format Format) error {
	if format == FormatJSONL {
		for i := range items {
			b, err := json.Marshal(items[i])
			if err != nil {
				return fmt.Errorf("data: item %d: %w", i, err)
			}
			if _, err := w.Write(append(b, '\n')); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for i := range items {
		b, err := json.Marshal(items[i])
		if err != nil {
			return fmt.Errorf("data: item %d: %w", i, err)
		}
		var ib bytes.Buffer
		if err := json.Indent(&ib, b, "    ", "    "); err != nil {
			return err
		}
		sep := ",\n    "
		if i == 0 {
			sep = "\n    "
		}
		if _, err := io.WriteString(w, sep+ib.String()); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "\n]\n")
	return err
}

// IsItemError reports whether err is (or wraps) an *ItemError and returns it.
func IsItemError(err error) (*ItemError, bool) {
	var ie *ItemError
	ok := errors.As(err, &ie)
	return ie, ok
}
