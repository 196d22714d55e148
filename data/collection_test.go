package data

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSharedCollections(t *testing.T) {
	dirs, err := FindCollections(sharedData)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 3 {
		t.Fatalf("found %d collections in %s, want at least 3", len(dirs), sharedData)
	}
	for _, d := range dirs {
		c, err := LoadCollection(d)
		if err != nil {
			t.Fatalf("LoadCollection(%s): %v", d, err)
		}
		if c.Modality == "" || len(c.LabelNames()) == 0 || len(c.Images) == 0 {
			t.Fatalf("%s: incomplete collection %+v", d, c.Name)
		}
		for _, img := range c.Images {
			if c.AnatomyOf(img) == "" {
				t.Fatalf("%s: %s: no anatomy (collection-wide or from its label)", c.Name, img.Path)
			}
		}
		splits := map[string]int{}
		for _, img := range c.Images {
			splits[img.Split]++
		}
		for _, s := range []string{SplitTrain, SplitValidation, SplitTest} {
			if splits[s] == 0 {
				t.Errorf("%s: no %s images (splits %v)", c.Name, s, splits)
			}
		}
		img := c.Images[0]
		if _, err := os.Stat(c.ImageFile(img)); err != nil {
			t.Errorf("%s: first image: %v", c.Name, err)
		}
		if c.Kind == ClassLabels && c.Labels[img.Class] == "" {
			t.Errorf("%s: class %q has no name", c.Name, img.Class)
		}
		if c.Kind == AttributeLabels && len(img.Attributes) == 0 {
			t.Errorf("%s: no attributes", c.Name)
		}
	}
}

func writeCollection(t *testing.T, meta, labels string) string {
	t.Helper()
	d := t.TempDir()
	if meta != "" {
		if err := os.WriteFile(filepath.Join(d, CollectionFile), []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if labels != "" {
		if err := os.WriteFile(filepath.Join(d, LabelsFile), []byte(labels), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestLoadCollectionErrors(t *testing.T) {
	meta := `{"name":"T","modality":"M","anatomy":"a","task":"disease diagnosis","labels":{"0":"no","1":"yes"}}`
	cases := []struct{ name, meta, labels string }{
		{"no collection.json", "", `{"image":"a.png","label":0}`},
		{"no labels.jsonl", meta, ""},
		{"bad collection JSON", `{"name":`, `{"image":"a.png","label":0}`},
		{"no modality", `{"labels":{"0":"x"}}`, `{"image":"a.png","label":0}`},
		{"no labels map", `{"modality":"M"}`, `{"image":"a.png","label":0}`},
		{"bad label line", meta, "{oops\n"},
		{"unknown class", meta, `{"image":"a.png","label":7}`},
		{"missing image name", meta, `{"label":0}`},
		{"missing label", meta, `{"image":"a.png"}`},
		{"unknown split", meta, `{"image":"a.png","split":"train","label":0}` + "\n" + `{"image":"b.png","split":"holdout","label":1}`},
		{"mixed label kinds", meta, `{"image":"a.png","label":0}` + "\n" + `{"image":"b.png","label":{"n":1}}`},
		{"no images", meta, "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadCollection(writeCollection(t, c.meta, c.labels))
			if !errors.Is(err, ErrBadCollection) {
				t.Fatalf("LoadCollection() = %v, want ErrBadCollection", err)
			}
		})
	}
}

func TestLoadCollectionLabelForms(t *testing.T) {
	meta := `{"modality":"M","anatomy":"a","labels":{"0":"no","1":"yes"}}`
	d := writeCollection(t, meta, `{"image":"a.png","split":"val","label":1}`+"\n"+`{"image":"b.png","label":"no"}`+"\n"+`{"image":"c.png","label":"1"}`)
	c, err := LoadCollection(d)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Images[0].Class, c.Images[1].Class, c.Images[2].Class}
	if got[0] != "1" || got[1] != "0" || got[2] != "1" || c.Images[0].Split != SplitValidation || c.Images[1].Split != "" {
		t.Fatalf("classes %v, images %+v", got, c.Images)
	}
	if c.Name != filepath.Base(d) {
		t.Fatalf("Name = %q, want folder name", c.Name)
	}
}

func TestLoadCollectionUnknownSplitNamed(t *testing.T) {
	meta := `{"modality":"M","anatomy":"a","labels":{"0":"no","1":"yes"}}`
	labels := `{"image":"a.png","split":"holdout","label":0}` + "\n" + `{"image":"b.png","split":"extra","label":1}` + "\n" + `{"image":"c.png","split":"holdout","label":1}`
	_, err := LoadCollection(writeCollection(t, meta, labels))
	if err == nil {
		t.Fatal("LoadCollection accepted unknown split names")
	}
	for _, want := range []string{`"extra" (first on line 2)`, `"holdout" (first on line 1)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestAnatomyOf(t *testing.T) {
	labels := `{"image":"a.png","split":"train","label":0}` + "\n" + `{"image":"b.png","split":"test","label":2}`
	cases := []struct {
		name, meta string
		fromLabels bool
		want       []string // AnatomyOf each image
		all        []string // Anatomies
	}{
		{"collection-wide", `{"modality":"M","anatomy":"chest","task":"disease diagnosis","labels":{"0":"a","1":"b","2":"c"}}`,
			false, []string{"chest", "chest"}, []string{"chest"}},
		{"from labels", `{"modality":"M","anatomy":"","task":"anatomy identification","labels":{"0":"abdomen","1":"chest","2":"head"}}`,
			true, []string{"abdomen", "head"}, []string{"abdomen", "chest", "head"}},
		{"labels win over collection-wide", `{"modality":"M","anatomy":"body","task":"Anatomy Identification","labels":{"0":"abdomen","1":"chest","2":"head"}}`,
			true, []string{"abdomen", "head"}, []string{"abdomen", "chest", "head"}},
		{"none", `{"modality":"M","task":"disease diagnosis","labels":{"0":"a","1":"b","2":"c"}}`,
			false, []string{"", ""}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			coll, err := LoadCollection(writeCollection(t, c.meta, labels))
			if err != nil {
				t.Fatal(err)
			}
			if got := coll.AnatomyFromLabels(); got != c.fromLabels {
				t.Errorf("AnatomyFromLabels() = %v, want %v", got, c.fromLabels)
			}
			for i, img := range coll.Images {
				if got := coll.AnatomyOf(img); got != c.want[i] {
					t.Errorf("AnatomyOf(%s) = %q, want %q", img.Path, got, c.want[i])
				}
			}
			if got := coll.Anatomies(); strings.Join(got, ",") != strings.Join(c.all, ",") {
				t.Errorf("Anatomies() = %v, want %v", got, c.all)
			}
		})
	}
}
