package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// ErrConfig reports an unusable builder configuration.
var ErrConfig = errors.New("builder: bad config")

// Config says what to build. The zero value of every optional field has a
// stated default.
type Config struct {
	// Collections are collection folders (collection.json + labels.jsonl).
	Collections []string
	// Reference is a real OmniMedVQA QA file whose questions supply the
	// phrasings and distractor texts. Required.
	Reference string
	// OutDir receives the benchmark; it is created if missing.
	OutDir string
	// ImageSize is the side of the square PNGs written, in pixels; 0 means
	// 56.
	ImageSize int
	// Seed makes the build reproducible: the same seed and inputs give the
	// same bytes.
	Seed uint64
	// MaxPerCollection caps the images taken from each collection (a
	// seeded, split-stratified sample); 0 means all.
	MaxPerCollection int
	// Holdout names the modalities (as in collection.json) held out of
	// training in the cross-modality split; empty means one modality
	// chosen by the seed (none when there is only one).
	Holdout []string
	// ValFraction and TestFraction split images whose collection gives no
	// split; 0 means 0.1 each.
	ValFraction, TestFraction float64
	// Workers converts images in parallel; 0 means 2.
	Workers int
}

// DefaultImageSize is the PNG side used when Config.ImageSize is 0.
const DefaultImageSize = 56

// Files the builder writes in OutDir.
const (
	FileAll      = "all.jsonl"        // every item, with its split
	FileManifest = "manifest.json"    // Manifest
	FileXTrain   = "xmod_train.jsonl" // cross-modality: train split of kept modalities
	FileXVal     = "xmod_validation.jsonl"
	FileXTest    = "xmod_test.jsonl" // cross-modality: held-out modalities, all splits
)

// SplitFile returns the file name of a split ("test" → "test.jsonl").
func SplitFile(split string) string { return split + ".jsonl" }

// Manifest records how a benchmark was built; it holds no timestamps, so it
// is as deterministic as the items.
type Manifest struct {
	Seed        uint64               `json:"seed"`
	ImageSize   int                  `json:"image_size"`
	Reference   string               `json:"reference"`
	Holdout     []string             `json:"holdout_modalities"`
	Collections []ManifestCollection `json:"collections"`
	Files       map[string]int       `json:"files"` // file → items
	Stats       data.Stats           `json:"stats"`
}

// ManifestCollection is one source collection of a build.
type ManifestCollection struct {
	Name     string `json:"name"`
	Dir      string `json:"dir"`
	Modality string `json:"modality"`
	Anatomy  string `json:"anatomy"`
	Task     string `json:"task"`
	License  string `json:"license"`
	Images   int    `json:"images"`
	// MetadataTypes are the question types whose answers come from the
	// collection's metadata (its modality, its collection-wide anatomy),
	// never from an image's label. Training on them for any image reads
	// no label.
	MetadataTypes []string `json:"metadata_types"`
}

// collectionInfo is a loaded collection and its id fragment.
type collectionInfo struct {
	c    *data.Collection
	slug string
}

// Build turns the configured collections into an OmniMedVQA-style
// benchmark in cfg.OutDir: PNG images, all.jsonl, one JSONL file per split
// (train/validation/test, split by image), the cross-modality files and
// manifest.json. It returns the manifest.
func Build(ctx context.Context, cfg Config) (*Manifest, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	refItems, err := data.Load(cfg.Reference, data.SkipInvalid(nil))
	if err != nil {
		return nil, fmt.Errorf("builder: reference: %w", err)
	}
	ref := newReference(refItems)
	colls, err := loadCollections(cfg.Collections)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Seed: cfg.Seed, ImageSize: cfg.ImageSize, Reference: filepath.Base(cfg.Reference), Files: map[string]int{}}
	var drafts []draft
	var refs []imageRef
	for _, ci := range colls {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		imgs := selectImages(ci, cfg)
		qs := newQuestionSet(ci, ref, colls)
		for _, img := range imgs {
			drafts = append(drafts, qs.drafts(img, rngFor(cfg.Seed, "q", img.outPath))...)
		}
		refs = append(refs, imgs...)
		m.Collections = append(m.Collections, ManifestCollection{
			Name: ci.c.Name, Dir: filepath.Base(ci.c.Dir), Modality: ci.c.Modality,
			Anatomy: strings.Join(ci.c.Anatomies(), ", "), Task: ci.c.Task, License: ci.c.License, Images: len(imgs),
			MetadataTypes: metadataTypes(ci.c),
		})
	}
	items, err := place(drafts, cfg.Seed)
	if err != nil {
		return nil, err
	}
	m.Holdout = holdout(cfg, colls)
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	if err := writeImages(ctx, cfg.OutDir, refs, cfg.ImageSize, cfg.Workers); err != nil {
		return nil, err
	}
	if err := writeItemFiles(cfg.OutDir, items, m); err != nil {
		return nil, err
	}
	return m, nil
}

func withDefaults(cfg Config) (Config, error) {
	if len(cfg.Collections) == 0 {
		return cfg, fmt.Errorf("%w: no collections", ErrConfig)
	}
	if cfg.Reference == "" || cfg.OutDir == "" {
		return cfg, fmt.Errorf("%w: reference and output folder are required", ErrConfig)
	}
	if cfg.ImageSize == 0 {
		cfg.ImageSize = DefaultImageSize
	}
	if cfg.ImageSize < 8 || cfg.ImageSize > 1024 {
		return cfg, fmt.Errorf("%w: image size %d outside 8..1024", ErrConfig, cfg.ImageSize)
	}
	if cfg.ValFraction == 0 {
		cfg.ValFraction = 0.1
	}
	if cfg.TestFraction == 0 {
		cfg.TestFraction = 0.1
	}
	if cfg.ValFraction < 0 || cfg.TestFraction < 0 || cfg.ValFraction+cfg.TestFraction >= 1 {
		return cfg, fmt.Errorf("%w: split fractions %.2f/%.2f", ErrConfig, cfg.ValFraction, cfg.TestFraction)
	}
	if cfg.MaxPerCollection < 0 {
		return cfg, fmt.Errorf("%w: negative cap", ErrConfig)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	return cfg, nil
}

func loadCollections(dirs []string) ([]collectionInfo, error) {
	var out []collectionInfo
	seen := map[string]bool{}
	for _, d := range dirs {
		c, err := data.LoadCollection(d)
		if err != nil {
			return nil, fmt.Errorf("builder: %w", err)
		}
		s := slug(filepath.Base(filepath.Clean(d)))
		if seen[s] {
			return nil, fmt.Errorf("%w: two collections named %q", ErrConfig, s)
		}
		seen[s] = true
		out = append(out, collectionInfo{c: c, slug: s})
	}
	return out, nil
}

// rngFor returns a generator seeded by the build seed and a key, so each
// image's questions do not depend on which other images are in the build.
func rngFor(seed uint64, parts ...string) *rand.Rand {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// unitHash maps a key to [0,1) deterministically.
func unitHash(seed uint64, parts ...string) float64 {
	return rngFor(seed, parts...).Float64()
}

// selectImages assigns every image its split (the collection's own, or a
// seeded one by image) and output path, and applies the cap with a seeded
// sample stratified by split.
func selectImages(ci collectionInfo, cfg Config) []imageRef {
	gray := ci.c.Channels == 1
	bySplit := map[string][]imageRef{}
	for _, img := range ci.c.Images {
		split := img.Split
		if split != data.SplitTrain && split != data.SplitValidation && split != data.SplitTest {
			u := unitHash(cfg.Seed, "split", ci.slug, img.Path)
			switch {
			case u < cfg.TestFraction:
				split = data.SplitTest
			case u < cfg.TestFraction+cfg.ValFraction:
				split = data.SplitValidation
			default:
				split = data.SplitTrain
			}
		}
		stem := slug(strings.TrimSuffix(img.Path, path.Ext(img.Path)))
		bySplit[split] = append(bySplit[split], imageRef{
			src: img, srcPath: ci.c.ImageFile(img), split: split, gray: gray, stem: stem,
			outPath: path.Join("images", ci.slug, stem+".png"),
		})
	}
	splits := []string{data.SplitTrain, data.SplitValidation, data.SplitTest}
	quota := capQuotas(bySplit, splits, cfg.MaxPerCollection)
	var out []imageRef
	for _, s := range splits {
		refs := bySplit[s]
		if quota != nil {
			sort.Slice(refs, func(i, j int) bool {
				return unitHash(cfg.Seed, "cap", refs[i].outPath) < unitHash(cfg.Seed, "cap", refs[j].outPath)
			})
			refs = refs[:quota[s]]
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].outPath < refs[j].outPath })
		out = append(out, refs...)
	}
	return out
}

// capQuotas shares a cap of n images among the splits in proportion to
// their sizes (largest remainder), giving every non-empty split at least
// one image when n allows; nil when there is no cap or it is not binding.
func capQuotas(bySplit map[string][]imageRef, splits []string, n int) map[string]int {
	total := 0
	for _, s := range splits {
		total += len(bySplit[s])
	}
	if n <= 0 || n >= total {
		return nil
	}
	quota := map[string]int{}
	used := 0
	for _, s := range splits {
		q := len(bySplit[s]) * n / total
		if q == 0 && len(bySplit[s]) > 0 {
			q = 1
		}
		quota[s] = q
		used += q
	}
	for used < n {
		best, bestR := "", -1.0
		for _, s := range splits {
			r := float64(len(bySplit[s])*n)/float64(total) - float64(quota[s])
			if quota[s] < len(bySplit[s]) && r > bestR {
				best, bestR = s, r
			}
		}
		quota[best]++
		used++
	}
	for used > n {
		for i := range splits {
			s := splits[i]
			if used > n && quota[s] > 1 {
				quota[s]--
				used--
			}
		}
	}
	return quota
}

// holdout returns the modalities held out of training in the cross-modality
// split.
func holdout(cfg Config, colls []collectionInfo) []string {
	if len(cfg.Holdout) > 0 {
		return append([]string(nil), cfg.Holdout...)
	}
	set := map[string]bool{}
	for _, ci := range colls {
		set[ci.c.Modality] = true
	}
	if len(set) < 2 {
		return nil
	}
	mods := make([]string, 0, len(set))
	for m := range set {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	return []string{mods[rngFor(cfg.Seed, "holdout").IntN(len(mods))]}
}

func writeItemFiles(dir string, items []data.Item, m *Manifest) error {
	if err := checkItems(items); err != nil {
		return err
	}
	held := map[string]bool{}
	for _, h := range m.Holdout {
		held[h] = true
	}
	files := map[string][]data.Item{FileAll: items}
	for _, it := range items {
		files[SplitFile(it.Split)] = append(files[SplitFile(it.Split)], it)
		if len(held) == 0 {
			continue
		}
		switch {
		case held[it.ModalityType]:
			files[FileXTest] = append(files[FileXTest], it)
		case it.Split == data.SplitTrain:
			files[FileXTrain] = append(files[FileXTrain], it)
		case it.Split == data.SplitValidation:
			files[FileXVal] = append(files[FileXVal], it)
		}
	}
	for name, its := range files {
		if err := data.Save(filepath.Join(dir, name), its); err != nil {
			return fmt.Errorf("builder: %w", err)
		}
		m.Files[name] = len(its)
	}
	m.Stats = data.ComputeStats(items)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("builder: manifest: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, FileManifest), append(b, '\n'), 0o644)
}

// checkItems validates what the builder is about to write: every item valid
// and every question_id unique, as data.Load will demand when it reads them.
func checkItems(items []data.Item) error {
	seen := make(map[string]int, len(items))
	for i, it := range items {
		if err := it.Validate(); err != nil {
			return fmt.Errorf("builder: item %d (%s): %w", i, it.QuestionID, err)
		}
		if j, dup := seen[it.QuestionID]; dup {
			return fmt.Errorf("builder: items %d and %d share question_id %q", j, i, it.QuestionID)
		}
		seen[it.QuestionID] = i
	}
	return nil
}
