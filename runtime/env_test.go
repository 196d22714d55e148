package runtime

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	tests := []struct {
		in      string
		want    Device
		wantStr string
		bad     bool
	}{
		{"", Device{Kind: DeviceAuto}, "auto", false},
		{"auto", Device{Kind: DeviceAuto}, "auto", false},
		{" CPU ", CPU, "cpu", false},
		{"cuda", Device{Kind: DeviceCUDA}, "cuda:0", false},
		{"cuda:0", Device{Kind: DeviceCUDA}, "cuda:0", false},
		{"cuda:3", Device{Kind: DeviceCUDA, ID: 3}, "cuda:3", false},
		{"cuda:-1", Device{}, "", true},
		{"cuda:", Device{}, "", true},
		{"cuda:01", Device{}, "", true},
		{"cuda:x", Device{}, "", true},
		{"gpu", Device{}, "", true},
		{"tpu:0", Device{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDevice(tt.in)
			if tt.bad {
				if !errors.Is(err, ErrBadDevice) || !strings.Contains(err.Error(), "cuda:N") && !strings.Contains(err.Error(), "ordinal") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || got != tt.want || got.String() != tt.wantStr {
				t.Fatalf("got %v (%q), %v; want %v (%q)", got, got.String(), err, tt.want, tt.wantStr)
			}
			var d Device
			if err := d.Set(tt.in); err != nil || d != tt.want {
				t.Fatalf("Set: %v %v", d, err)
			}
		})
	}
}

// TestDeviceFallback runs on the CPU-only ONNX Runtime build: auto falls
// back with one log line, explicit cuda fails clearly.
func TestDeviceFallback(t *testing.T) {
	var logs bytes.Buffer
	env, err := Open(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("ONNX Runtime is required: %v", err)
	}
	defer env.Close()
	ctx := context.Background()
	if _, err := env.ResolveDevice(ctx, Device{Kind: DeviceCUDA}); err == nil {
		// A CUDA build of ORT with a GPU: auto must pick it, silently.
		if d, err := env.ResolveDevice(ctx, Device{}); err != nil || d != (Device{Kind: DeviceCUDA}) {
			t.Fatalf("auto with working CUDA → %v, %v", d, err)
		}
		if logs.Len() != 0 {
			t.Fatalf("unexpected log: %s", logs.String())
		}
		return
	}
	for i := 0; i < 3; i++ {
		d, err := env.ResolveDevice(ctx, Device{Kind: DeviceAuto})
		if err != nil || d != CPU {
			t.Fatalf("auto → %v, %v; want cpu", d, err)
		}
	}
	s, err := env.NewSessionFromBytes(ctx, "add", addModel(t), SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Device() != CPU {
		t.Errorf("session device %v", s.Device())
	}
	s.Close()
	if n := strings.Count(logs.String(), "falling back to CPU"); n != 1 {
		t.Fatalf("fallback logged %d times, want 1:\n%s", n, logs.String())
	}
	t.Log(strings.TrimSpace(logs.String()))
	if !strings.Contains(logs.String(), "reason=") {
		t.Errorf("log line does not say why: %s", logs.String())
	}
	for _, d := range []Device{{Kind: DeviceCUDA}, {Kind: DeviceCUDA, ID: 1}} {
		_, err := env.ResolveDevice(ctx, d)
		if !errors.Is(err, ErrCUDAUnavailable) {
			t.Errorf("%v: err = %v", d, err)
		}
		_, err = env.NewSessionFromBytes(ctx, "add", addModel(t), SessionOptions{Device: d})
		if !errors.Is(err, ErrCUDAUnavailable) {
			t.Errorf("session on %v: err = %v", d, err)
		}
	}
}

func TestEnvInfo(t *testing.T) {
	env := openEnv(t)
	if !strings.HasPrefix(env.Version(), "1.") {
		t.Errorf("version %q", env.Version())
	}
	if !slices.Contains(env.Providers(), "CPUExecutionProvider") {
		t.Errorf("providers %v", env.Providers())
	}
	if !isFile(env.LibraryPath()) {
		t.Errorf("library path %q", env.LibraryPath())
	}
	// A second Open shares the process environment.
	env2, err := Open(context.Background(), Options{LibraryPath: env.LibraryPath()})
	if err != nil {
		t.Fatal(err)
	}
	if env2.Version() != env.Version() {
		t.Error("second env differs")
	}
	env2.Close()
	env2.Close() // idempotent
	var nilEnv *Env
	if err := nilEnv.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with cancelled ctx: %v", err)
	}
}

func TestOpenLibraryErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.WriteFile(junk, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name     string
		opts     Options
		sentinel error
	}{
		{"explicit missing", Options{LibraryPath: filepath.Join(dir, "nope.so")}, ErrLibraryNotFound},
		{"env var missing", Options{Locator: Locator{Getenv: fakeEnv(map[string]string{EnvLibraryPath: "/no/such/lib.so"})}}, ErrLibraryNotFound},
		{"nothing found", Options{Locator: Locator{Getenv: fakeEnv(nil), WorkDir: empty, Executable: filepath.Join(empty, "medgr2"), SystemDirs: []string{}}}, ErrLibraryNotFound},
		{"not a library", Options{LibraryPath: junk}, ErrLibraryLoad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Open(context.Background(), tt.opts)
			if err == nil {
				env.Close()
				t.Fatal("no error")
			}
			var le *LibraryError
			if !errors.Is(err, tt.sentinel) || !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LibraryError wrapping %v", err, tt.sentinel)
			}
			if !strings.Contains(err.Error(), "make ort") || !strings.Contains(err.Error(), "scripts/fetch-ort.sh") {
				t.Errorf("message does not say how to fix: %v", err)
			}
		})
	}
}

func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLocatorOrder(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	repoLib := mk("repo/third_party/ort/libonnxruntime.so.1")
	exeLib := mk("opt/medgr2/third_party/ort/libonnxruntime.so")
	sysLib := mk("sys/lib/libonnxruntime.so.1")
	envLib := mk("custom/ort.so")
	deep := filepath.Join(root, "repo/a/b/c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(root, "opt/medgr2/bin/medgr2")
	nowhere := filepath.Join(root, "nowhere")
	tests := []struct {
		name string
		loc  Locator
		want string
	}{
		{"env var wins", Locator{Getenv: fakeEnv(map[string]string{EnvLibraryPath: envLib}), WorkDir: deep, Executable: exe}, envLib},
		{"upward from workdir", Locator{Getenv: fakeEnv(nil), WorkDir: deep, Executable: exe}, repoLib},
		{"next to executable", Locator{Getenv: fakeEnv(nil), WorkDir: nowhere, Executable: exe, SystemDirs: []string{}}, exeLib},
		{"system dirs", Locator{Getenv: fakeEnv(nil), WorkDir: nowhere, Executable: filepath.Join(nowhere, "x"), SystemDirs: []string{filepath.Join(root, "sys/lib")}}, sysLib},
		{"LD_LIBRARY_PATH", Locator{Getenv: fakeEnv(map[string]string{"LD_LIBRARY_PATH": "/nope:" + filepath.Join(root, "sys/lib")}), WorkDir: nowhere, Executable: filepath.Join(nowhere, "x")}, sysLib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.loc.Find()
			if err != nil || got != tt.want {
				t.Fatalf("Find() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	_, err := Locator{Getenv: fakeEnv(nil), WorkDir: nowhere, Executable: filepath.Join(nowhere, "x"), SystemDirs: []string{}}.Find()
	var le *LibraryError
	if !errors.As(err, &le) || !slices.Contains(le.Tried, filepath.Join(nowhere, "third_party/ort/libonnxruntime.so.1")) {
		t.Fatalf("err = %v", err)
	}
}
