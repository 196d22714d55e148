// Package atomicfile writes a file so that readers see either its old
// contents or the whole new ones: the bytes go to a synced temporary file
// in the same folder, which is then renamed over the target. A session or
// reader that holds the old file open keeps its bytes (a new inode), and a
// crash leaves no half-written file.
//
//	if err := atomicfile.Write("out/state.json", data); err != nil { … }
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to path atomically, mode 0644. On error the temporary
// file is removed and path is left as it was; errors name path.
func Write(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("atomicfile: write %s: %w", path, err), removeIfExists(tmp.Name()))
		}
	}()
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// removeIfExists removes path, ignoring that it is already gone.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
