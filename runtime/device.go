package runtime

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceKind selects an execution provider family.
type DeviceKind int

// Device kinds. The zero value is DeviceAuto.
const (
	DeviceAuto DeviceKind = iota // CUDA when it works, else CPU (logged)
	DeviceCPU                    // CPU execution provider only
	DeviceCUDA                   // CUDA execution provider; an error if unavailable
)

// Device is where sessions run: the parsed form of `auto`, `cpu`, `cuda` or
// `cuda:N`. The zero value is Device{Kind: DeviceAuto}.
type Device struct {
	Kind DeviceKind
	ID   int // CUDA device ordinal; 0 unless Kind is DeviceCUDA (auto tries 0)
}

// CPU is the CPU device.
var CPU = Device{Kind: DeviceCPU}

// ParseDevice parses a device string: "auto" (or ""), "cpu", "cuda" (device
// 0) or "cuda:N" with N a non-negative integer. Case and surrounding spaces
// are ignored. Anything else is an error wrapping ErrBadDevice.
func ParseDevice(s string) (Device, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "", "auto":
		return Device{Kind: DeviceAuto}, nil
	case "cpu":
		return CPU, nil
	case "cuda":
		return Device{Kind: DeviceCUDA}, nil
	}
	num, ok := strings.CutPrefix(v, "cuda:")
	if !ok {
		return Device{}, fmt.Errorf("%w %q: want auto, cpu, cuda or cuda:N", ErrBadDevice, s)
	}
	id, err := strconv.Atoi(num)
	if err != nil || id < 0 || num != strconv.Itoa(id) {
		return Device{}, fmt.Errorf("%w %q: device ordinal must be a non-negative integer", ErrBadDevice, s)
	}
	return Device{Kind: DeviceCUDA, ID: id}, nil
}

// String returns the canonical form: "auto", "cpu" or "cuda:N".
func (d Device) String() string {
	switch d.Kind {
	case DeviceAuto:
		return "auto"
	case DeviceCPU:
		return "cpu"
	case DeviceCUDA:
		return "cuda:" + strconv.Itoa(d.ID)
	}
	return fmt.Sprintf("device(%d)", int(d.Kind))
}

// Set implements flag.Value, so a Device can be bound to a --device flag.
func (d *Device) Set(s string) error {
	p, err := ParseDevice(s)
	if err != nil {
		return err
	}
	*d = p
	return nil
}
