package bench

import (
	"testing"
	"time"
)

func TestUtilisation(t *testing.T) {
	tests := []struct {
		cpu, wall time.Duration
		cores     int
		want      CPU
	}{
		{3 * time.Second, 2 * time.Second, 2, CPU{Seconds: 3, Cores: 2, Util: 0.75}},
		{time.Second, time.Second, 1, CPU{Seconds: 1, Cores: 1, Util: 1}},
		{time.Second, 0, 2, CPU{Seconds: 1, Cores: 2}},
		{time.Second, time.Second, 0, CPU{Seconds: 1}},
	}
	for _, tc := range tests {
		if got := Utilisation(tc.cpu, tc.wall, tc.cores); got != tc.want {
			t.Errorf("Utilisation(%v, %v, %d) = %+v, want %+v", tc.cpu, tc.wall, tc.cores, got, tc.want)
		}
	}
}

// TestProcessCPU checks that busy work shows up in the process's CPU
// time and that a meter reports it.
func TestProcessCPU(t *testing.T) {
	m := startCPU()
	before, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	x := 0
	for time.Since(start) < 50*time.Millisecond {
		x++
	}
	after, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 10*time.Millisecond {
		t.Fatalf("50 ms of busy loop (%d turns) used %v of CPU", x, d)
	}
	if c := m.stop(time.Since(start)); c.Seconds < 0.01 || c.Util <= 0 || c.Cores < 1 {
		t.Fatalf("meter %+v", c)
	}
}
