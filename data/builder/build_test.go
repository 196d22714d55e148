package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"image"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
)

const sharedData = "../../../shared/data"

func testConfig(t *testing.T, out string) Config {
	t.Helper()
	dirs, err := data.FindCollections(sharedData)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no collections in %s: %v", sharedData, err)
	}
	capN := 60
	if testing.Short() {
		capN = 24
	}
	return Config{
		Collections:      dirs,
		Reference:        filepath.Join(sharedData, "omnimedvqa-text", "omnimedvqa_text_sample.json"),
		OutDir:           out,
		ImageSize:        32,
		Seed:             7,
		MaxPerCollection: capN,
	}
}

// digest hashes every file under dir by relative path.
func digest(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ctx := context.Background()
	if _, err := Build(ctx, testConfig(t, a)); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(ctx, testConfig(t, b)); err != nil {
		t.Fatal(err)
	}
	da, db := digest(t, a), digest(t, b)
	if len(da) != len(db) {
		t.Fatalf("%d files vs %d", len(da), len(db))
	}
	for k, v := range da {
		if db[k] != v {
			t.Fatalf("%s differs between two builds with the same seed", k)
		}
	}
	c := t.TempDir()
	cfg := testConfig(t, c)
	cfg.Seed = 8
	if _, err := Build(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if digest(t, c)[FileAll] == da[FileAll] {
		t.Fatal("a different seed gave the same items")
	}
}

func TestBuildInvariants(t *testing.T) {
	out := t.TempDir()
	cfg := testConfig(t, out)
	m, err := Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	items, err := data.Load(filepath.Join(out, FileAll), data.CheckImages())
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != m.Stats.Items || len(items) == 0 {
		t.Fatalf("%d items, manifest says %d", len(items), m.Stats.Items)
	}
	checkSplitsByImage(t, items)
	checkLetterBalance(t, items)
	checkCoverage(t, items)
	checkImageSize(t, items[0], cfg.ImageSize)
	checkCrossModality(t, out, m)
	checkMetadataTypes(t, items, m)
}

// checkMetadataTypes checks that the manifest's metadata types are
// questions answered without a label: every collection's modality question,
// and an anatomy question only where every image answers it with the
// collection-wide anatomy (TestBuildAnatomyTask covers anatomy from labels).
func checkMetadataTypes(t *testing.T, items []data.Item, m *Manifest) {
	t.Helper()
	anatomy := map[string]map[string]bool{} // dataset → anatomy answers
	for _, it := range items {
		if it.QuestionType != TypeAnatomy {
			continue
		}
		if anatomy[it.Dataset] == nil {
			anatomy[it.Dataset] = map[string]bool{}
		}
		anatomy[it.Dataset][it.GTAnswer] = true
	}
	withAnatomy := 0
	for _, c := range m.Collections {
		if !slices.Contains(c.MetadataTypes, TypeModality) {
			t.Errorf("%s: metadata types %q lack %s", c.Name, c.MetadataTypes, TypeModality)
		}
		if !slices.Contains(c.MetadataTypes, TypeAnatomy) {
			continue
		}
		withAnatomy++
		if answers := anatomy[c.Name]; len(answers) != 1 || !answers[c.Anatomy] {
			t.Errorf("%s: anatomy is a metadata type, but its anatomy answers are %v (collection anatomy %q)",
				c.Name, answers, c.Anatomy)
		}
	}
	if withAnatomy == 0 {
		t.Error("no collection has anatomy as a metadata type")
	}
}

func checkSplitsByImage(t *testing.T, items []data.Item) {
	t.Helper()
	splitOf := map[string]string{}
	for _, it := range items {
		if s, ok := splitOf[it.ImagePath]; ok && s != it.Split {
			t.Fatalf("image %s is in %s and %s", it.ImagePath, s, it.Split)
		}
		splitOf[it.ImagePath] = it.Split
	}
	// The collections' own splits are kept: an image listed as test in
	// labels.jsonl is a test image here.
	for _, d := range []string{"pneumoniamnist", "busi", "bccd"} {
		c, err := data.LoadCollection(filepath.Join(sharedData, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range c.Images {
			stem := slug(strings.TrimSuffix(img.Path, filepath.Ext(img.Path)))
			if s, ok := splitOf["images/"+d+"/"+stem+".png"]; ok && s != img.Split {
				t.Fatalf("%s/%s: split %s, collection says %s", d, img.Path, s, img.Split)
			}
		}
	}
}

func checkLetterBalance(t *testing.T, items []data.Item) {
	t.Helper()
	for _, split := range []string{"", data.SplitTrain, data.SplitTest} {
		counts := map[string]int{}
		n := 0
		for _, it := range items {
			if split != "" && it.Split != split {
				continue
			}
			if len(it.Options()) != data.MaxOptions {
				t.Fatalf("%s has %d options", it.QuestionID, len(it.Options()))
			}
			l, _ := it.AnswerLetter()
			counts[l]++
			n++
		}
		for _, l := range strings.Split(data.Letters, "") {
			share := 100 * float64(counts[l]) / float64(n)
			if math.Abs(share-25) > 3 {
				t.Fatalf("split %q: letter %s is the answer in %.1f%% of %d items", split, l, share, n)
			}
		}
	}
}

func checkCoverage(t *testing.T, items []data.Item) {
	t.Helper()
	types := map[string]bool{}
	phrasings := map[string]map[string]bool{}
	for _, it := range items {
		types[it.QuestionType] = true
		if phrasings[it.QuestionType] == nil {
			phrasings[it.QuestionType] = map[string]bool{}
		}
		phrasings[it.QuestionType][it.Question] = true
	}
	for _, ty := range []string{TypeModality, TypeAnatomy, TypeDiagnosis, TypeAttribute} {
		if !types[ty] {
			t.Errorf("no %s questions", ty)
		}
		if len(phrasings[ty]) < 3 {
			t.Errorf("%s has %d phrasings, want several", ty, len(phrasings[ty]))
		}
	}
}

func checkImageSize(t *testing.T, it data.Item, size int) {
	t.Helper()
	f, err := os.Open(it.ImageFile())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != size || cfg.Height != size {
		t.Fatalf("%s: %dx%d, %v; want %d", it.ImageFile(), cfg.Width, cfg.Height, err, size)
	}
}

func checkCrossModality(t *testing.T, out string, m *Manifest) {
	t.Helper()
	if len(m.Holdout) != 1 {
		t.Fatalf("holdout = %v, want one modality", m.Holdout)
	}
	train, err := data.Load(filepath.Join(out, FileXTrain))
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.Load(filepath.Join(out, FileXTest))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range train {
		if it.ModalityType == m.Holdout[0] || it.Split != data.SplitTrain {
			t.Fatalf("cross-modality train holds %s (%s, %s)", it.QuestionID, it.ModalityType, it.Split)
		}
	}
	if len(test) == 0 {
		t.Fatal("cross-modality test is empty")
	}
	for _, it := range test {
		if it.ModalityType != m.Holdout[0] {
			t.Fatalf("cross-modality test holds %s of %s", it.QuestionID, it.ModalityType)
		}
	}
}

func TestBuildConfigErrors(t *testing.T) {
	good := testConfig(t, t.TempDir())
	cases := []struct {
		name string
		edit func(*Config)
		want error
	}{
		{"no collections", func(c *Config) { c.Collections = nil }, ErrConfig},
		{"no reference", func(c *Config) { c.Reference = "" }, ErrConfig},
		{"tiny images", func(c *Config) { c.ImageSize = 3 }, ErrConfig},
		{"bad fractions", func(c *Config) { c.ValFraction, c.TestFraction = 0.6, 0.5 }, ErrConfig},
		{"negative cap", func(c *Config) { c.MaxPerCollection = -1 }, ErrConfig},
		{"missing reference", func(c *Config) { c.Reference = filepath.Join(t.TempDir(), "none.json") }, os.ErrNotExist},
		{"not a collection", func(c *Config) { c.Collections = []string{t.TempDir()} }, data.ErrBadCollection},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			if _, err := Build(context.Background(), cfg); !errors.Is(err, c.want) {
				t.Fatalf("Build() = %v, want %v", err, c.want)
			}
		})
	}
}

func TestBuildBadImage(t *testing.T) {
	dir := t.TempDir()
	meta := `{"modality":"Test Modality","anatomy":"test organ","task":"disease diagnosis","labels":{"0":"a","1":"b"}}`
	labels := `{"image":"x.png","split":"train","label":0}` + "\n" + `{"image":"y.png","split":"test","label":1}`
	for name, body := range map[string]string{"collection.json": meta, "labels.jsonl": labels, "x.png": "not a png", "y.png": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t, t.TempDir())
	cfg.Collections = []string{dir}
	if _, err := Build(context.Background(), cfg); !errors.Is(err, ErrImage) {
		t.Fatalf("Build() = %v, want ErrImage", err)
	}
}

func TestBuildCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, testConfig(t, t.TempDir())); !errors.Is(err, context.Canceled) {
		t.Fatalf("Build() = %v, want context.Canceled", err)
	}
}

func TestMakeBins(t *testing.T) {
	imgs := func(vals ...float64) []data.Image {
		var out []data.Image
		for _, v := range vals {
			out = append(out, data.Image{Attributes: map[string]any{"n": v}})
		}
		return out
	}
	cases := []struct {
		name string
		vals []float64
		want []string
	}{
		{"few values padded", []float64{1, 1, 2, 3}, []string{"1", "2", "3", "4"}},
		{"many values ranged", []float64{0, 1, 2, 3, 4, 5, 6, 7}, []string{"0–1", "2–3", "4–5", "6–7"}},
		{"heavy ties", []float64{0, 0, 0, 0, 0, 0, 1, 2, 3, 9}, []string{"0", "1", "2", "3–9"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bins := makeBins(imgs(c.vals...), "n")
			var got []string
			for _, b := range bins {
				got = append(got, b.label)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("bins = %v, want %v", got, c.want)
			}
			for _, v := range c.vals {
				if _, ok := binOf(bins, v); !ok {
					t.Fatalf("value %v in no bin", v)
				}
			}
		})
	}
}

func TestGenericPhrasing(t *testing.T) {
	items, err := data.Load(filepath.Join(sharedData, "omnimedvqa-text", "omnimedvqa_text_sample.json"), data.SkipInvalid(nil))
	if err != nil {
		t.Fatal(err)
	}
	ref := newReference(items)
	target := modalityKeywords("X-Ray")
	cases := []struct {
		q    string
		want bool
	}{
		{"What imaging modality was used to capture this image?", true},
		{"Which joint does the bone in the picture come from?", false},
		{"What part is shown in this ultrasound image?", false},
		{"Is the image normal?", false},
		{"Is the eye axis in this image vertical or horizontal?", false},
	}
	for _, c := range cases {
		if got := ref.generic(c.q, target); got != c.want {
			t.Errorf("generic(%q) = %v, want %v", c.q, got, c.want)
		}
	}
	var buf bytes.Buffer
	for _, p := range ref.phrasings(TypeAnatomy, "X-Ray") {
		buf.WriteString(p + "\n")
	}
	if strings.Contains(buf.String(), "joint") || buf.Len() == 0 {
		t.Fatalf("anatomy phrasings for X-Ray:\n%s", buf.String())
	}
}

// TestBuildAnatomyTask builds from collections whose labels name the
// anatomy, one with and one without a collection-wide anatomy: every image
// gets exactly one anatomy question, answered by its label, and the written
// files load back (no duplicate question_id).
func TestBuildAnatomyTask(t *testing.T) {
	labels := `{"image":"a.png","split":"train","label":0}` + "\n" + `{"image":"b.png","split":"val","label":1}` + "\n" +
		`{"image":"c.png","split":"test","label":2}` + "\n" + `{"image":"d.png","split":"train","label":1}`
	cases := []struct{ name, anatomy string }{{"no collection anatomy", ""}, {"collection anatomy too", "body"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			meta := `{"modality":"CT(Computed Tomography)","anatomy":"` + c.anatomy + `","task":"anatomy identification","labels":{"0":"abdomen","1":"chest","2":"head"}}`
			files := map[string]string{"collection.json": meta, "labels.jsonl": labels}
			for name, body := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range []string{"a.png", "b.png", "c.png", "d.png"} {
				writeGrayPNG(t, filepath.Join(dir, name))
			}
			out := t.TempDir()
			cfg := testConfig(t, out)
			cfg.Collections = append(cfg.Collections[:1:1], dir)
			m, err := Build(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// The anatomy answers come from the labels, so only the modality
			// question is metadata.
			if mc := m.Collections[len(m.Collections)-1]; !slices.Equal(mc.MetadataTypes, []string{TypeModality}) {
				t.Errorf("metadata types %q, want only %q", mc.MetadataTypes, TypeModality)
			}
			items, err := data.Load(filepath.Join(out, FileAll))
			if err != nil {
				t.Fatalf("written items do not load: %v", err)
			}
			want := map[string]string{"a": "abdomen", "b": "chest", "c": "head", "d": "chest"}
			got := map[string]string{}
			for _, it := range items {
				if it.Dataset != filepath.Base(dir) || it.QuestionType != TypeAnatomy {
					continue
				}
				stem := strings.TrimSuffix(filepath.Base(it.ImagePath), ".png")
				if _, dup := got[stem]; dup {
					t.Errorf("image %s has two anatomy questions", stem)
				}
				got[stem] = it.GTAnswer
			}
			for stem, w := range want {
				if got[stem] != w {
					t.Errorf("image %s: anatomy answer %q, want %q", stem, got[stem], w)
				}
			}
		})
	}
}

func writeGrayPNG(t *testing.T, path string) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckItemsDuplicateID(t *testing.T) {
	it := data.Item{QuestionID: "x-1", Question: "Q?", GTAnswer: "a", ImagePath: "i.png"}
	if err := it.SetOptions([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := checkItems([]data.Item{it}); err != nil {
		t.Fatalf("checkItems(one item) = %v", err)
	}
	err := checkItems([]data.Item{it, it})
	if err == nil || !strings.Contains(err.Error(), `"x-1"`) {
		t.Fatalf("checkItems(duplicate) = %v, want an error naming x-1", err)
	}
}
