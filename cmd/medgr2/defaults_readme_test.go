package main

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update", false, "rewrite the generated sections of README.md and models/default/README.md")

// TestDefaultsReadmeIsGenerated checks that the committed README of the
// default bundles shows what their PROVENANCE.json and files say. With
// -update it rewrites the section instead.
func TestDefaultsReadmeIsGenerated(t *testing.T) {
	dir := filepath.Join("..", "..", defaultBundles)
	checkGenerated(t, filepath.Join(dir, readmeFile), func() ([]byte, error) { return renderDefaultsReadme(dir) },
		"PROVENANCE.json and the bundles", "TestDefaultsReadmeIsGenerated")
}

// checkGenerated checks that the committed file at path is what render
// returns; with -update it writes render's output there first. source
// and test name what the file is generated from and the test to rerun.
func checkGenerated(t *testing.T, path string, render func() ([]byte, error), source, test string) {
	t.Helper()
	want, err := render()
	if err != nil {
		t.Fatal(err)
	}
	if *updateReadme {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what %s says; run `go test ./cmd/medgr2 -run %s -update`.\nwant:\n%s", path, source, test, want)
	}
}

// fakeDefaults writes a defaults folder with the given provenance and a
// VQA model.json.
func fakeDefaults(t *testing.T, prov, readme string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"PROVENANCE.json": prov,
		"vqa/model.json":  `{"architecture":{"vocab_size":1000,"hidden_size":64,"num_hidden_layers":3,"vision_config":{"depth":1,"embed_dim":48}}}`,
		"generator/w.bin": strings.Repeat("x", 1500000),
		"reward/w.bin":    "",
	}
	if readme != "" {
		files[readmeFile] = readme
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const testProvenance = `{"command":"medgr2 pipeline --config c.json --defaults d","seed":7,
"stages":{"vqa":"s7/policy-grpo","generator":"s7/round-3","reward":"s7/round-3"},
"hashes":{"vqa":"aaaa","generator":"bbbb","reward":"bbbb"},
"accuracy":{"test split":0.625,"real OmniMedVQA":0.35333},"exported":"2026-11-25T21:19:31Z"}`

func TestUpdateDefaultsReadme(t *testing.T) {
	dir := fakeDefaults(t, testProvenance, "# x\n\nbefore\n"+readmeBegin+"\nstale 38.3%\n"+readmeEnd+"\nafter\n")
	if err := updateDefaultsReadme(dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, readmeFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"before\n" + readmeBegin + "\nThey are the bundles of seed 7 of a pipeline run, exported 2026-11-25 by",
		"    medgr2 pipeline --config c.json --defaults d\n",
		"| `vqa/` | VQA policy (fast path) | `s7/policy-grpo` | `aaaa` |",
		"| `generator/` | sample generator | `s7/round-3` | `bbbb` | 1.5 MB |",
		"decoder width 64, 3 layers, vision width 48, depth 1, vocabulary 1000",
		"| real OmniMedVQA | 35.3% |\n| test split | 62.5% |\n" + readmeEnd + "\nafter\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "38.3") {
		t.Errorf("stale number kept:\n%s", got)
	}
	again, err := renderDefaultsReadme(dir)
	if err != nil || !bytes.Equal(again, got) {
		t.Fatalf("render is not stable: %v\n%s", err, again)
	}
}

func TestUpdateDefaultsReadmeErrors(t *testing.T) {
	tests := []struct {
		name   string
		dir    func(t *testing.T) string
		want   error
		substr string
	}{
		{"no markers", func(t *testing.T) string { return fakeDefaults(t, testProvenance, "# x\nno section\n") }, errReadmeMarkers, ""},
		{"no end marker", func(t *testing.T) string { return fakeDefaults(t, testProvenance, readmeBegin+"\n") }, errReadmeMarkers, ""},
		{"no provenance", func(t *testing.T) string {
			dir := fakeDefaults(t, testProvenance, "")
			if err := os.Remove(filepath.Join(dir, "PROVENANCE.json")); err != nil {
				t.Fatal(err)
			}
			return dir
		}, fs.ErrNotExist, "PROVENANCE.json"},
		{"bad provenance", func(t *testing.T) string { return fakeDefaults(t, "{", "") }, nil, "PROVENANCE.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := updateDefaultsReadme(tc.dir(t))
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("err %v, want %v mentioning %q", err, tc.want, tc.substr)
			}
		})
	}
	// A folder without a README gets one with only the section.
	dir := fakeDefaults(t, testProvenance, "")
	if err := updateDefaultsReadme(dir); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, readmeFile)); err != nil || !strings.Contains(string(got), "62.5%") {
		t.Fatalf("new README %q, %v", got, err)
	}
}
