package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultBundle(t *testing.T) {
	root := t.TempDir()
	vqa := filepath.Join(root, "vqa")
	if err := os.MkdirAll(vqa, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vqa, "model.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "reward"), 0o755); err != nil { // no manifest
		t.Fatal(err)
	}
	t.Setenv(envModels, root)
	cases := []struct{ role, want string }{
		{"vqa", vqa},
		{"reward", ""},
		{"generator", ""},
	}
	for _, c := range cases {
		if got := defaultBundle(c.role); got != c.want {
			t.Errorf("defaultBundle(%q) = %q, want %q", c.role, got, c.want)
		}
	}
}
