// Package dircopy copies folder trees of plain files, as the pipeline and
// the trainers do with model bundles.
//
//	if err := dircopy.Copy("models/default/vqa", "out/bundle"); err != nil {
//		return err
//	}
package dircopy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Copy copies every file under src into dst, keeping the relative paths:
// folders are created as needed (mode 0755), files are streamed (mode
// 0644) and overwrite what is there. A symbolic link is copied as the
// file it names; one that names no regular file is an error, as is a
// missing src. Errors name the path and wrap the cause.
func Copy(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("dircopy: %w", err)
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return fmt.Errorf("dircopy: %w", err)
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("dircopy: %w", err)
			}
			return nil
		}
		fi, err := os.Stat(path) // a link is copied as the file it names
		if err != nil {
			return fmt.Errorf("dircopy: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("dircopy: %s is not a regular file", path)
		}
		return copyFile(path, target)
	})
}

// copyFile streams the file src to dst.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("dircopy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("dircopy: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("dircopy: %w", cerr))
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("dircopy: copy %s: %w", src, err)
	}
	return nil
}
