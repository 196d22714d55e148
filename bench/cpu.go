package bench

import (
	goruntime "runtime"
	"time"
)

// CPU is a process's CPU use over a run.
type CPU struct {
	// Seconds is the user and system CPU time the process used, in
	// seconds; 0 when it could not be read.
	Seconds float64 `json:"seconds"`
	// Cores is the number of logical CPUs the process may use
	// (runtime.NumCPU).
	Cores int `json:"cores"`
	// Util is Seconds ÷ (wall time × Cores): 1 when every core was busy
	// for the whole run.
	Util float64 `json:"util"`
}

// Utilisation returns the CPU record of cpu seconds used over wall on
// cores; a zero wall or core count gives Util 0.
func Utilisation(cpu, wall time.Duration, cores int) CPU {
	c := CPU{Seconds: cpu.Seconds(), Cores: cores}
	if wall > 0 && cores > 0 {
		c.Util = cpu.Seconds() / (wall.Seconds() * float64(cores))
	}
	return c
}

// cpuMeter measures the process's CPU time from its start.
type cpuMeter struct {
	start time.Duration
	err   error // reading the start failed: the run reports no CPU
}

// startCPU reads the process's CPU time now.
func startCPU() cpuMeter {
	t, err := ProcessCPU()
	return cpuMeter{start: t, err: err}
}

// stop returns the CPU used since startCPU over wall.
func (m cpuMeter) stop(wall time.Duration) CPU {
	t, err := ProcessCPU()
	if m.err != nil || err != nil {
		return CPU{Cores: goruntime.NumCPU()}
	}
	return Utilisation(t-m.start, wall, goruntime.NumCPU())
}
