package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/server/api"
)

// sharedData is the real data folder, from this package's directory.
const sharedData = "../../shared/data"

func TestDefaultMix(t *testing.T) {
	mix, err := DefaultMix(sharedData, 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(mix) != 12 {
		t.Fatalf("%d requests, want 12", len(mix))
	}
	sizes := map[image.Point]bool{}
	images := map[string]bool{}
	for i, it := range mix {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(it.Image))
		if err != nil {
			t.Fatalf("request %d (%s): %v", i, it.Source, err)
		}
		sizes[image.Pt(cfg.Width, cfg.Height)] = true
		images[string(it.Image)] = true
		if it.Question == "" || len(it.Options) < 2 {
			t.Errorf("request %d: %+v", i, it)
		}
	}
	for i, want := range []string{"knee", "mhsma", "pneumoniamnist", "busi", "bccd"} {
		if !strings.HasPrefix(mix[i].Source, want) || !strings.HasPrefix(mix[i+5].Source, want) {
			t.Errorf("requests %d and %d from %s and %s, want %s", i, i+5, mix[i].Source, mix[i+5].Source, want)
		}
	}
	if len(sizes) < 4 || !sizes[image.Pt(28, 28)] || !sizes[image.Pt(640, 480)] {
		t.Errorf("image sizes %v: want 28² to 640×480", sizes)
	}
	if len(images) < 10 { // two OmniMedVQA items may ask about one image
		t.Errorf("%d distinct images in 12 requests", len(images))
	}
	if short, long := len(mix[2].Question), len(mix[3].Question); long < 20*short {
		t.Errorf("prompts of %d and %d bytes: want short and long ones", short, long)
	}
	body, err := mix[0].Body()
	if err != nil {
		t.Fatal(err)
	}
	var req api.VQARequest
	if err := json.Unmarshal(body, &req); err != nil || req.Question != mix[0].Question || len(req.Options) != len(mix[0].Options) {
		t.Fatalf("body %s: %v", body[:80], err)
	}
	if img, err := base64.StdEncoding.DecodeString(req.Image); err != nil || !bytes.Equal(img, mix[0].Image) {
		t.Fatalf("body image: %v", err)
	}
	if _, err := DefaultMix(t.TempDir(), 5); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing data: err %v", err)
	}
	if _, err := DefaultMix(sharedData, 0); !errors.Is(err, ErrEmptyMix) {
		t.Errorf("n = 0: err %v", err)
	}
}

func TestLoadMix(t *testing.T) {
	dir := t.TempDir()
	png, err := os.ReadFile(filepath.Join(sharedData, "pneumoniamnist/test/pneumoniamnist_test_00001.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "img"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "img/a.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	item := func(id, path string) string {
		return `{"question_id":"` + id + `","question":"Is there pneumonia?","gt_answer":"yes","option_A":"yes","option_B":"no","image_path":"` + path + `"}` + "\n"
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mix, err := LoadMix(write("ok.jsonl", item("q1", "img/a.png")+item("q2", "img/a.png")))
	if err != nil {
		t.Fatal(err)
	}
	if len(mix) != 2 || mix[1].Source != "q2" || !bytes.Equal(mix[0].Image, png) || strings.Join(mix[0].Options, ",") != "yes,no" {
		t.Fatalf("mix %+v", mix)
	}
	tests := []struct {
		name, body string
		want       error
		substr     string
	}{
		{"missing image", item("q1", "img/a.png") + item("q9", "img/none.png"), fs.ErrNotExist, "item 1 (q9)"},
		{"bad item", `{"question":"no options"}` + "\n", nil, "bad.jsonl"},
		{"empty", "[]", ErrEmptyMix, "empty.jsonl"},
	}
	for _, tc := range tests {
		name := strings.ReplaceAll(tc.name, " ", "") + ".jsonl"
		if tc.name == "bad item" {
			name = "bad.jsonl"
		}
		if tc.name == "empty" {
			name = "empty.jsonl"
		}
		_, err := LoadMix(write(name, tc.body))
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: err %v, want %v mentioning %q", tc.name, err, tc.want, tc.substr)
		}
	}
	if _, err := LoadMix(filepath.Join(dir, "absent.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: err %v", err)
	}
}
