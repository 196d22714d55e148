package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/medgr2/medgr2/bench"
)

// machineCPU is a reading of the machine's CPU time (the first line of
// /proc/stat), in clock ticks.
type machineCPU struct {
	busy, total uint64
}

// readMachineCPU reads /proc/stat's aggregate line: busy is every state
// but idle and iowait.
func readMachineCPU() (machineCPU, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return machineCPU{}, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return machineCPU{}, fmt.Errorf("bench: /proc/stat: %w", err)
	}
	return parseMachineCPU(line)
}

// parseMachineCPU parses "cpu user nice system idle iowait irq softirq
// steal …".
func parseMachineCPU(line string) (machineCPU, error) {
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("bench: /proc/stat: unexpected first line %q", line)
	}
	var m machineCPU
	for i, s := range fields[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("bench: /proc/stat: %q: %w", line, err)
		}
		m.total += v
		if i != 3 && i != 4 { // idle, iowait
			m.busy += v
		}
	}
	return m, nil
}

// loadMeter measures what other processes use of the machine over a run.
type loadMeter struct {
	machine machineCPU
	self    time.Duration
	start   time.Time
	ok      bool
}

func startLoad() loadMeter {
	m, err := readMachineCPU()
	self, err2 := bench.ProcessCPU()
	return loadMeter{machine: m, self: self, start: time.Now(), ok: err == nil && err2 == nil}
}

// otherShare returns the share of the machine's CPU time that other
// processes used since startLoad: the machine's busy share minus this
// process's CPU time over wall × cores; -1 when it cannot be read.
func (l loadMeter) otherShare(cores int) float64 {
	m, err := readMachineCPU()
	self, err2 := bench.ProcessCPU()
	wall := time.Since(l.start)
	if !l.ok || err != nil || err2 != nil || m.total <= l.machine.total || cores < 1 || wall <= 0 {
		return -1
	}
	busy := float64(m.busy-l.machine.busy) / float64(m.total-l.machine.total)
	mine := (self - l.self).Seconds() / (wall.Seconds() * float64(cores))
	return max(busy-mine, 0)
}
