//go:build linux && cgo

package backend

/*
#include <malloc.h>
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// residentBytes returns this process's resident set size in bytes.
func residentBytes() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("backend: resident memory: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("backend: resident memory: /proc/self/statm reads %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("backend: resident memory: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// trimCHeap returns the C heap's free pages to the OS (glibc malloc_trim):
// ONNX Runtime's freed buffers below glibc's mmap threshold stay mapped
// otherwise.
func trimCHeap() { C.malloc_trim(0) }
