//go:build !unix

package bench

import (
	"errors"
	"fmt"
	"time"
)

// ProcessCPU returns the CPU time this process has used so far; outside
// Unix it is not implemented and reports errors.ErrUnsupported.
func ProcessCPU() (time.Duration, error) {
	return 0, fmt.Errorf("bench: process CPU time: %w", errors.ErrUnsupported)
}
