package runtime

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvLibraryPath is the environment variable that names the ONNX Runtime
// shared library explicitly.
const EnvLibraryPath = "MEDGR2_ORT_LIB"

// libNames are the file names tried in each directory, best first.
var libNames = []string{"libonnxruntime.so.1", "libonnxruntime.so"}

// repoLibDir is where `make ort` puts the library, relative to the repo root.
const repoLibDir = "third_party/ort"

// defaultSystemDirs are searched after LD_LIBRARY_PATH and ld.so.conf.
var defaultSystemDirs = []string{
	"/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/lib64", "/lib",
}

// Locator finds the ONNX Runtime shared library. Its fields are the side
// effects of the search, so tests can run it against a fake file system
// layout; the zero value uses the real process environment.
type Locator struct {
	// Getenv reads environment variables; nil means os.Getenv.
	Getenv func(string) string
	// WorkDir is where the upward search for third_party/ort starts; ""
	// means the current working directory.
	WorkDir string
	// Executable is the running binary; "" means os.Executable(). The search
	// also walks upward from its directory.
	Executable string
	// SystemDirs replaces the system library directories (LD_LIBRARY_PATH,
	// /etc/ld.so.conf.d and the usual lib folders) when non-nil.
	SystemDirs []string
}

// Find returns the path of the ONNX Runtime library, looking in order at
//  1. $MEDGR2_ORT_LIB (an error if set but missing; it is never ignored),
//  2. third_party/ort/ in the working directory and each parent,
//  3. third_party/ort/ next to the executable and in each of its parents,
//  4. LD_LIBRARY_PATH, the directories in /etc/ld.so.conf(.d) and the
//     usual system lib folders.
//
// When nothing is found it returns a *LibraryError wrapping
// ErrLibraryNotFound whose message lists the paths tried and says to run
// `make ort`.
func (l Locator) Find() (string, error) {
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv(EnvLibraryPath); p != "" {
		if isFile(p) {
			return p, nil
		}
		return "", &LibraryError{Tried: []string{p},
			Err: fmt.Errorf("%s=%s: no such file", EnvLibraryPath, p)}
	}
	var tried []string
	for _, dir := range l.candidateDirs(getenv) {
		for _, name := range libNames {
			p := filepath.Join(dir, name)
			tried = append(tried, p)
			if isFile(p) {
				return p, nil
			}
		}
	}
	return "", &LibraryError{Tried: tried, Err: ErrLibraryNotFound}
}

// candidateDirs lists the directories to search, in order, without repeats.
func (l Locator) candidateDirs(getenv func(string) string) []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if d != "" && !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	wd := l.WorkDir
	if wd == "" {
		wd, _ = os.Getwd()
	}
	exe := l.Executable
	if exe == "" {
		exe, _ = os.Executable()
	}
	for _, start := range []string{wd, exeDir(exe)} {
		for _, d := range upward(start) {
			add(filepath.Join(d, repoLibDir))
		}
	}
	sys := l.SystemDirs
	if sys == nil {
		sys = systemDirs(getenv)
	}
	for _, d := range sys {
		add(d)
	}
	return dirs
}

func exeDir(exe string) string {
	if exe == "" {
		return ""
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(exe)
}

// upward returns dir and each of its parents up to the root.
func upward(dir string) []string {
	if dir == "" {
		return nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	var out []string
	for {
		out = append(out, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}

// systemDirs returns LD_LIBRARY_PATH, the ld.so.conf directories and the
// default library folders.
func systemDirs(getenv func(string) string) []string {
	var dirs []string
	for _, d := range filepath.SplitList(getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	confs, _ := filepath.Glob("/etc/ld.so.conf.d/*.conf")
	for _, c := range append([]string{"/etc/ld.so.conf"}, confs...) {
		dirs = append(dirs, ldConfDirs(c)...)
	}
	return append(dirs, defaultSystemDirs...)
}

// ldConfDirs reads the directory lines of one ld.so.conf file; include
// lines and comments are skipped (the .d folder is globbed separately).
func ldConfDirs(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if strings.HasPrefix(line, "/") {
			dirs = append(dirs, line)
		}
	}
	return dirs
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
