package dircopy

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCopy checks that Copy copies nested files, overwrites what
// is there, and fails on what it cannot read.
func TestCopy(t *testing.T) {
	write := func(t *testing.T, path, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		setup   func(t *testing.T, src, dst string)
		want    map[string]string // files of dst after the copy
		wantErr bool
	}{
		{"nested", func(t *testing.T, src, _ string) {
			write(t, filepath.Join(src, "a.txt"), "a")
			write(t, filepath.Join(src, "graphs", "b.onnx"), "bb")
		}, map[string]string{"a.txt": "a", "graphs/b.onnx": "bb"}, false},
		{"overwrites", func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "a.txt"), "new")
			write(t, filepath.Join(dst, "a.txt"), "old and longer")
		}, map[string]string{"a.txt": "new"}, false},
		{"symlink", func(t *testing.T, src, _ string) {
			write(t, filepath.Join(src, "a.txt"), "a")
			if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"a.txt": "a", "link": "a"}, false},
		{"dangling-symlink", func(t *testing.T, src, _ string) {
			if err := os.Symlink("nowhere", filepath.Join(src, "link")); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
		{"missing-source", func(t *testing.T, src, _ string) {
			if err := os.Remove(src); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), filepath.Join(t.TempDir(), "out")
			tc.setup(t, src, dst)
			err := Copy(src, dst)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			for rel, text := range tc.want {
				got, err := os.ReadFile(filepath.Join(dst, rel))
				if err != nil || string(got) != text {
					t.Errorf("%s = %q, %v; want %q", rel, got, err, text)
				}
			}
		})
	}
}
