package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"testing"
)

// runWithCode runs cfg on be with the code identities ids (unit → id).
func runWithCode(t *testing.T, cfg *Config, be *fakeBackend, ids map[string]string) *Pipeline {
	t.Helper()
	var log bytes.Buffer
	p, err := New(cfg, be, Options{Progress: &log, Code: func(u string) string { return ids[u] }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	return p
}

// TestCodeChangeReruns checks that unchanged code resumes every stage and
// that a changed code unit reruns the stages that run it and those that
// read their outputs, and no others.
func TestCodeChangeReruns(t *testing.T) {
	seedStages := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, seedStage(1, n))
		}
		return out
	}
	models := append(seedStages(PolicySeed, PolicyUnfiltered, PolicyFiltered, PolicyGRPO), roundStage(1, 0), roundStage(1, 1))
	cases := []struct {
		name    string
		unit    string   // the unit whose identity changes ("": none)
		ran     []string // stages that must rerun
		skipped []string // stages that must not
	}{
		{"unchanged", "", nil, append(models, StageData, StageTokenizer, seedStage(1, "seed"), seedStage(1, "baselines"), StageReport)},
		{"backend", CodeBackend, append(models, StageTokenizer, StageReport), []string{StageData, seedStage(1, "seed"), seedStage(1, "baselines")}},
		{"loop", CodeLoop, append(models, StageTokenizer, seedStage(1, "seed"), seedStage(1, "baselines"), StageReport), []string{StageData}},
		{"benchmark", CodeBenchmark, append(models, StageData, StageTokenizer, seedStage(1, "seed"), seedStage(1, "baselines"), StageReport), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Seeds = cfg.Seeds[:1]
			be := newFake(cfg.OutDir)
			ids := map[string]string{CodeBenchmark: "b1", CodeLoop: "l1", CodeBackend: "m1"}
			runWithCode(t, cfg, be, ids)
			if tc.unit != "" {
				ids[tc.unit] += "-changed"
			}
			p := runWithCode(t, cfg, be, ids)
			for _, s := range tc.ran {
				if !slices.Contains(p.Ran(), s) {
					t.Errorf("%s was skipped; ran %v", s, p.Ran())
				}
			}
			for _, s := range tc.skipped {
				if !slices.Contains(p.Skipped(), s) {
					t.Errorf("%s reran; ran %v", s, p.Ran())
				}
			}
			if tc.unit == "" && len(p.Ran()) > 0 {
				t.Errorf("unchanged code reran %v", p.Ran())
			}
		})
	}
}

// TestStagesNameTheirCode checks that every planned stage names the code
// it runs, so none escapes the code identity.
func TestStagesNameTheirCode(t *testing.T) {
	cfg := testConfig(t)
	cfg.Synthesis.PerImage = 1
	p, err := New(cfg, newFake(cfg.OutDir), Options{Code: SameCode("x")})
	if err != nil {
		t.Fatal(err)
	}
	known := []string{CodeBenchmark, CodeLoop, CodeBackend}
	for _, s := range p.stages {
		if len(s.code) == 0 {
			t.Errorf("stage %s names no code unit", s.name)
		}
		for _, u := range s.code {
			if !slices.Contains(known, u) {
				t.Errorf("stage %s: unknown code unit %q", s.name, u)
			}
		}
	}
}

// TestBuildIdentity checks the identity of clean, modified and unstamped
// builds.
func TestBuildIdentity(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "medgr2")
	if err := os.WriteFile(exe, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	found := func() (string, error) { return exe, nil }
	lost := func() (string, error) { return "", errors.New("no executable") }
	stamped := func(modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: modified}}}
	}
	const exeID = "exe:9a3a45d01531a20e" // sha256("binary")[:16]
	cases := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		exe  func() (string, error)
		want string
	}{
		{"clean checkout", stamped("false"), true, found, "git:abc123"},
		{"uncommitted changes", stamped("true"), true, found, exeID},
		{"no vcs stamp", &debug.BuildInfo{}, true, found, exeID},
		{"no build info", nil, false, found, exeID},
		{"unreadable executable", nil, false, lost, "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildIdentity(tc.info, tc.ok, tc.exe); got != tc.want {
				t.Fatalf("identity %q, want %q", got, tc.want)
			}
		})
	}
	if a, b := BuildIdentity(), BuildIdentity(); a == "" || a != b {
		t.Fatalf("BuildIdentity %q then %q, want one non-empty value", a, b)
	}
}
