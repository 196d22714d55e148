package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMakeDemoFetchesORTOnlyWhenUnset dry-runs `make demo`: the ONNX
// Runtime fetch runs on a fresh clone (MEDGR2_ORT_LIB unset, library
// absent) and not when MEDGR2_ORT_LIB names a library.
func TestMakeDemoFetchesORTOnlyWhenUnset(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed for this test: %v", err)
	}
	tests := []struct {
		name      string
		env       string // MEDGR2_ORT_LIB; "" unsets it
		wantFetch bool
	}{
		{"fresh clone", "", true},
		{"library given", "/opt/ort/libonnxruntime.so.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// ORT_LIB points at a path that never exists, as on a fresh clone.
			cmd := exec.Command("make", "-n", "-C", "../..", "demo", "ORT_LIB="+t.TempDir()+"/libonnxruntime.so.1")
			cmd.Env = withoutEnv(os.Environ(), "MEDGR2_ORT_LIB", "MAKEFLAGS", "MAKELEVEL")
			if tc.env != "" {
				cmd.Env = append(cmd.Env, "MEDGR2_ORT_LIB="+tc.env)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n demo: %v\n%s", err, out)
			}
			if got := strings.Contains(string(out), "scripts/fetch-ort.sh"); got != tc.wantFetch {
				t.Fatalf("fetch in plan = %v, want %v:\n%s", got, tc.wantFetch, out)
			}
		})
	}
}

// withoutEnv returns env without the named variables.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && name != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
