package bench

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/server/api"
)

// ErrEmptyMix reports a request mix without requests.
var ErrEmptyMix = errors.New("bench: the request mix is empty")

// Item is one request of a mix: an image's bytes and a multiple-choice
// question about it.
type Item struct {
	Source   string   // where it came from: a collection name or the item's question id
	Image    []byte   // the image file's bytes (PNG, JPEG, …)
	Question string   // question text
	Options  []string // answer choices, in order
}

// Body returns the item as the JSON body of a /v1/vqa request (fast mode,
// image as base64).
func (it Item) Body() ([]byte, error) {
	b, err := json.Marshal(api.VQARequest{Image: base64.StdEncoding.EncodeToString(it.Image), Question: it.Question, Options: it.Options})
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", it.Source, err)
	}
	return b, nil
}

// Bodies returns the JSON bodies of items, in order.
func Bodies(items []Item) ([][]byte, error) {
	out := make([][]byte, len(items))
	for i, it := range items {
		b, err := it.Body()
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// LoadMix reads a request mix from an OmniMedVQA file (a JSON array or
// JSONL of items, as data.Load reads them): each item's image (image_path,
// relative to the file's folder) with its question and options, in file
// order. A bad item, a missing image or an empty file is an error naming
// the file.
func LoadMix(path string) ([]Item, error) {
	items, err := data.Load(path)
	if err != nil {
		return nil, fmt.Errorf("bench: request mix: %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrEmptyMix, path)
	}
	out := make([]Item, len(items))
	for i, it := range items {
		img, err := os.ReadFile(it.ImageFile())
		if err != nil {
			return nil, fmt.Errorf("bench: request mix %s item %d (%s): %w", path, i, it.QuestionID, err)
		}
		out[i] = Item{Source: it.QuestionID, Image: img, Question: it.Question, Options: it.Options()}
	}
	return out, nil
}

// Paths of the default mix's sources, relative to the shared data folder.
const (
	mixOmniMedVQA = "omnimedvqa-real/omnimedvqa_real.json" // real OmniMedVQA items: knee X-rays (224²), sperm microscopy
	mixXRays      = "pneumoniamnist/test/*.png"            // 28² chest X-rays
	mixBUSI       = "busi/images/benign_*.png"             // about 500² breast ultrasound
	mixBCCD       = "bccd/images/*.jpg"                    // 640×480 blood-smear JPEGs
)

// mixContext is the clinical context that lengthens some prompts of the
// default mix (about 240 tokens whole, a third of it for BCCD).
var mixContext = strings.Repeat("The patient presented with symptoms reported by the referring clinician; prior imaging was unremarkable. ", 12)

// DefaultMix returns n requests mixed as real traffic is, from the shared
// data folder root (../shared/data from the repository root): in a fixed
// interleaving of five, a real OmniMedVQA knee X-ray item, a real
// OmniMedVQA sperm-microscopy item, a PneumoniaMNIST 28² X-ray with a
// one-line question, a BUSI ultrasound (about 500²) after a long clinical
// context, and a BCCD 640×480 JPEG after a shorter one: images from 28² to
// 640×480 and prompts from tens to hundreds of tokens. Consecutive
// requests of a kind take the next item or image of their source. A
// missing source is an error naming it.
func DefaultMix(root string, n int) ([]Item, error) {
	if n <= 0 {
		return nil, ErrEmptyMix
	}
	items, err := data.Load(filepath.Join(root, mixOmniMedVQA))
	if err != nil {
		return nil, fmt.Errorf("bench: default mix: %w", err)
	}
	var knee, sperm []data.Item
	for _, it := range items {
		if strings.HasPrefix(it.QuestionID, "knee") {
			knee = append(knee, it)
		} else {
			sperm = append(sperm, it)
		}
	}
	if len(knee) == 0 || len(sperm) == 0 {
		return nil, fmt.Errorf("bench: default mix: %s lacks knee or sperm items", mixOmniMedVQA)
	}
	var globs [3][]string
	for k, pattern := range []string{mixXRays, mixBUSI, mixBCCD} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil || len(m) == 0 {
			return nil, fmt.Errorf("bench: default mix: no images match %s", filepath.Join(root, pattern))
		}
		globs[k] = m
	}
	out := make([]Item, 0, n)
	for i := 0; len(out) < n; i++ {
		var it Item
		var path string
		j := i / 5 // the request's turn within its kind
		switch i % 5 {
		case 0, 1:
			src := knee[j%len(knee)]
			if i%5 == 1 {
				src = sperm[j%len(sperm)]
			}
			it, path = Item{Source: src.QuestionID, Question: src.Question, Options: src.Options()}, src.ImageFile()
		case 2:
			path = globs[0][j%len(globs[0])]
			it = Item{Source: "pneumoniamnist", Question: "Is there pneumonia?", Options: []string{"yes", "no"}}
		case 3:
			path = globs[1][j%len(globs[1])]
			it = Item{Source: "busi", Question: mixContext + "What does this breast ultrasound show?",
				Options: []string{"a benign lesion", "a malignant lesion", "normal tissue"}}
		case 4:
			path = globs[2][j%len(globs[2])]
			it = Item{Source: "bccd", Question: mixContext[:len(mixContext)/3] + "How many white blood cells are visible in this smear?",
				Options: []string{"none", "one", "two", "three or more"}}
		}
		if it.Image, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("bench: default mix: %w", err)
		}
		out = append(out, it)
	}
	return out, nil
}
