package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime/debug"
	"sync"
)

// Code units: the parts of the program a stage runs besides its config.
// Options.Code gives each an identity, and a stage's hash covers the
// identities of the units it runs, so changed code reruns the stages that
// run it and every stage that reads their outputs.
const (
	// CodeBenchmark is the benchmark code: data, data/builder and
	// data/eval (building the benchmark, baselines, scoring).
	CodeBenchmark = "benchmark"
	// CodeLoop is this package: the seed split, filtering, the rounds,
	// the policies' data and the report.
	CodeLoop = "loop"
	// CodeBackend is the Backend and what it runs (for ortbackend:
	// tokenizer, models, train, graph, runtime).
	CodeBackend = "backend"
)

// CodeFunc returns the identity of a code unit (CodeBenchmark, CodeLoop,
// CodeBackend). Equal identities mean equal code; any string will do.
type CodeFunc func(unit string) string

// SameCode returns a CodeFunc that gives every unit the identity id: a
// change anywhere reruns every stage.
func SameCode(id string) CodeFunc { return func(string) string { return id } }

// BuildIdentity identifies the running program's code. A binary the go
// command built in a clean git checkout is "git:" and its commit
// (debug.ReadBuildInfo's vcs.revision). Any other (a checkout with
// uncommitted changes, a build without VCS stamps, a test binary) is
// "exe:" and the first 16 hex digits of the SHA-256 of its executable,
// which changes with any change to the compiled code; "unknown" if that
// cannot be read, a fixed identity under which code changes go unseen.
// The result is computed once per process.
func BuildIdentity() string { return buildIdentityOnce() }

var buildIdentityOnce = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	return buildIdentity(info, ok, os.Executable)
})

// buildIdentity is BuildIdentity over its inputs.
func buildIdentity(info *debug.BuildInfo, ok bool, exe func() (string, error)) string {
	var rev, modified string
	if ok && info != nil {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	if rev != "" && modified == "false" {
		return "git:" + rev
	}
	if sum, err := fileHash(exe); err == nil {
		return "exe:" + sum
	}
	return "unknown"
}

// fileHash returns the first 16 hex digits of the SHA-256 of the file
// that path names.
func fileHash(path func() (string, error)) (string, error) {
	name, err := path()
	if err != nil {
		return "", err
	}
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
