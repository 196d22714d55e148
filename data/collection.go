package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Names of the two files that make a folder a labelled image collection.
const (
	CollectionFile = "collection.json"
	LabelsFile     = "labels.jsonl"
)

// Canonical split names used by builders and benchmarks.
const (
	SplitTrain      = "train"
	SplitValidation = "validation"
	SplitTest       = "test"
)

// ErrBadCollection reports a collection folder that cannot be read.
var ErrBadCollection = errors.New("data: bad collection")

// LabelKind says how a collection labels its images.
type LabelKind int

const (
	// ClassLabels: each image has one class id whose name is in
	// collection.json's "labels" map (id → name).
	ClassLabels LabelKind = iota + 1
	// AttributeLabels: each image has an object of named attributes
	// (counts, flags, categories) described in collection.json's "labels"
	// map (attribute → description).
	AttributeLabels
)

// Collection is a labelled image collection: a folder with collection.json
// (name, source, licence, modality, anatomy, task, label meanings) and
// labels.jsonl (one line per image: image path, split, label). Everything a
// builder needs to know about modality, anatomy and labels comes from here.
type Collection struct {
	Dir      string // folder the collection was loaded from
	Name     string // "name" in collection.json
	Source   string // "source"
	License  string // "license"
	Modality string // "modality", as OmniMedVQA names modalities where possible
	// Anatomy is "anatomy": the body region every image shows, or "" when
	// it varies per image (see AnatomyOf).
	Anatomy string
	// Task is the question type the labels answer ("disease diagnosis",
	// "lesion grading", "other biological attributes", …).
	Task     string
	Channels int // "channels"; 0 when not given
	// Labels maps a class id to its name (ClassLabels) or an attribute to
	// its description (AttributeLabels).
	Labels map[string]string
	Kind   LabelKind
	Images []Image
	// Meta is collection.json verbatim, for fields this type does not name.
	Meta map[string]json.RawMessage
}

// Image is one labelled image of a collection.
type Image struct {
	Path  string // relative to the collection folder, slash-separated
	Split string // canonical split (see NormalizeSplit); "" when not given
	// Class is the class id key of Labels (ClassLabels only).
	Class string
	// Attributes holds the attribute values (AttributeLabels only): float64
	// for numbers, string, or bool.
	Attributes map[string]any
}

// collectionJSON is the part of collection.json this package reads.
type collectionJSON struct {
	Name     string            `json:"name"`
	Source   string            `json:"source"`
	License  string            `json:"license"`
	Modality string            `json:"modality"`
	Anatomy  string            `json:"anatomy"`
	Task     string            `json:"task"`
	Channels int               `json:"channels"`
	Labels   map[string]string `json:"labels"`
}

// labelLine is one line of labels.jsonl.
type labelLine struct {
	Image string          `json:"image"`
	Split string          `json:"split"`
	Label json.RawMessage `json:"label"`
}

// LoadCollection reads the collection in dir. It checks that the modality
// and labels are present and that every labels.jsonl line names an image and
// a label the collection defines; errors wrap ErrBadCollection with the file
// and line. Image files themselves are not opened.
func LoadCollection(dir string) (*Collection, error) {
	meta, cj, err := readCollectionJSON(dir)
	if err != nil {
		return nil, err
	}
	c := &Collection{
		Dir: dir, Name: cj.Name, Source: cj.Source, License: cj.License,
		Modality: cj.Modality, Anatomy: cj.Anatomy, Task: cj.Task,
		Channels: cj.Channels, Labels: cj.Labels, Meta: meta,
	}
	if c.Name == "" {
		c.Name = filepath.Base(dir)
	}
	if err := c.readLabels(); err != nil {
		return nil, err
	}
	return c, nil
}

func readCollectionJSON(dir string) (map[string]json.RawMessage, collectionJSON, error) {
	var cj collectionJSON
	path := filepath.Join(dir, CollectionFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, cj, fmt.Errorf("%w: %v", ErrBadCollection, err)
	}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, cj, fmt.Errorf("%w: %s: %v", ErrBadCollection, path, err)
	}
	if err := json.Unmarshal(b, &cj); err != nil {
		return nil, cj, fmt.Errorf("%w: %s: %v", ErrBadCollection, path, err)
	}
	if strings.TrimSpace(cj.Modality) == "" {
		return nil, cj, fmt.Errorf("%w: %s: no modality", ErrBadCollection, path)
	}
	if len(cj.Labels) == 0 {
		return nil, cj, fmt.Errorf("%w: %s: no labels", ErrBadCollection, path)
	}
	return meta, cj, nil
}

func (c *Collection) readLabels() error {
	path := filepath.Join(c.Dir, LabelsFile)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCollection, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 16<<20)
	unknown := map[string]int{} // split name → first line
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		img, err := c.parseLine(b)
		if err != nil {
			return fmt.Errorf("%w: %s:%d: %v", ErrBadCollection, path, line, err)
		}
		if _, seen := unknown[img.Split]; !seen && !knownSplit(img.Split) {
			unknown[img.Split] = line
		}
		c.Images = append(c.Images, img)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadCollection, path, err)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: %s: unknown split names %s (want train, val or test, or none)",
			ErrBadCollection, path, describeSplits(unknown))
	}
	if len(c.Images) == 0 {
		return fmt.Errorf("%w: %s: no images", ErrBadCollection, path)
	}
	return nil
}

func (c *Collection) parseLine(b []byte) (Image, error) {
	var ll labelLine
	if err := json.Unmarshal(b, &ll); err != nil {
		return Image{}, err
	}
	if ll.Image == "" {
		return Image{}, errors.New("no image")
	}
	img := Image{Path: filepath.ToSlash(ll.Image), Split: NormalizeSplit(ll.Split)}
	label := bytes.TrimSpace(ll.Label)
	if len(label) == 0 || bytes.Equal(label, []byte("null")) {
		return Image{}, errors.New("no label")
	}
	kind := ClassLabels
	if label[0] == '{' {
		kind = AttributeLabels
	}
	if c.Kind == 0 {
		c.Kind = kind
	} else if c.Kind != kind {
		return Image{}, errors.New("mixes class labels and attribute labels")
	}
	var err error
	if kind == AttributeLabels {
		err = json.Unmarshal(label, &img.Attributes)
	} else {
		img.Class, err = c.classKey(label)
	}
	return img, err
}

// classKey maps a label value (a number, an id string or a class name) to
// its key in Labels.
func (c *Collection) classKey(label json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(label, &v); err != nil {
		return "", err
	}
	var key string
	switch t := v.(type) {
	case float64:
		key = strconv.FormatFloat(t, 'f', -1, 64)
	case string:
		key = t
	default:
		return "", fmt.Errorf("label %s is neither a class id nor an object", label)
	}
	if _, ok := c.Labels[key]; ok {
		return key, nil
	}
	for k, name := range c.Labels {
		if strings.EqualFold(name, key) {
			return k, nil
		}
	}
	return "", fmt.Errorf("label %q is not in collection.json labels", key)
}

// TaskAnatomy is the task of a collection whose class labels name the body
// region of each image (MedNIST's abdomen / chest / head CT).
const TaskAnatomy = "anatomy identification"

// AnatomyFromLabels reports whether the class labels name each image's
// anatomy: the task is anatomy identification and the labels are classes.
func (c *Collection) AnatomyFromLabels() bool {
	return c.Kind == ClassLabels && strings.EqualFold(strings.TrimSpace(c.Task), TaskAnatomy)
}

// AnatomyOf returns the anatomy img shows: the label's name when the labels
// name it (AnatomyFromLabels), else the collection-wide Anatomy; "" when
// neither says.
func (c *Collection) AnatomyOf(img Image) string {
	if c.AnatomyFromLabels() {
		return c.Labels[img.Class]
	}
	return c.Anatomy
}

// Anatomies returns every anatomy the collection's images show: the label
// names when the labels name it, else the collection-wide Anatomy (none
// when that is empty).
func (c *Collection) Anatomies() []string {
	if c.AnatomyFromLabels() {
		return c.LabelNames()
	}
	if c.Anatomy == "" {
		return nil
	}
	return []string{c.Anatomy}
}

// ImageFile returns the path of img on disk.
func (c *Collection) ImageFile(img Image) string {
	return filepath.Join(c.Dir, filepath.FromSlash(img.Path))
}

// ClassKeys returns the class ids in order (numerically where they are
// numbers).
func (c *Collection) ClassKeys() []string {
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, ea := strconv.Atoi(keys[i])
		b, eb := strconv.Atoi(keys[j])
		if ea == nil && eb == nil {
			return a < b
		}
		return keys[i] < keys[j]
	})
	return keys
}

// LabelNames returns the class names in class-id order (ClassLabels), or
// the attribute names sorted (AttributeLabels).
func (c *Collection) LabelNames() []string {
	keys := c.ClassKeys()
	if c.Kind == AttributeLabels {
		return keys
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = c.Labels[k]
	}
	return names
}

// NormalizeSplit maps the usual spellings of split names to SplitTrain,
// SplitValidation and SplitTest ("val", "valid", "dev" → validation);
// other names are returned lower-cased and trimmed.
func NormalizeSplit(s string) string {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "train", "training":
		return SplitTrain
	case "val", "valid", "validation", "dev":
		return SplitValidation
	case "test", "testing":
		return SplitTest
	default:
		return v
	}
}

// knownSplit reports whether s (already normalised) is a canonical split or
// empty (not given).
func knownSplit(s string) bool {
	return s == "" || s == SplitTrain || s == SplitValidation || s == SplitTest
}

// describeSplits lists unknown split names with their first line, sorted.
func describeSplits(first map[string]int) string {
	names := make([]string, 0, len(first))
	for n := range first {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%q (first on line %d)", n, first[n])
	}
	return strings.Join(parts, ", ")
}

// FindCollections returns, sorted, the folders directly under root that hold
// both collection.json and labels.jsonl.
func FindCollections(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("data: find collections: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(root, e.Name())
		if fileExists(filepath.Join(d, CollectionFile)) && fileExists(filepath.Join(d, LabelsFile)) {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
