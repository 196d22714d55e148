//go:build unix

package bench

import (
	"fmt"
	"syscall"
	"time"
)

// ProcessCPU returns the user and system CPU time this process has used
// so far (getrusage(RUSAGE_SELF)).
func ProcessCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("bench: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
