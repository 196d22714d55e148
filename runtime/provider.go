package runtime

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

const cudaProvider = "CUDAExecutionProvider"

// ResolveDevice returns the device a session asking for d would run on:
// cpu stays cpu; cuda:N is returned when CUDA works on device N and is an
// error wrapping ErrCUDAUnavailable otherwise; auto becomes cuda:0 when CUDA
// works and cpu when it does not, logging ONE line (per Env) at warn level
// that says why. The CUDA probe result is cached per device ordinal.
func (e *Env) ResolveDevice(ctx context.Context, d Device) (Device, error) {
	if err := e.checkOpen(); err != nil {
		return Device{}, err
	}
	if err := ctx.Err(); err != nil {
		return Device{}, fmt.Errorf("runtime: resolve device: %w", err)
	}
	switch d.Kind {
	case DeviceCPU:
		return CPU, nil
	case DeviceCUDA:
		if err := e.probeCUDA(d.ID); err != nil {
			return Device{}, err
		}
		return d, nil
	case DeviceAuto:
		err := e.probeCUDA(0)
		if err == nil {
			return Device{Kind: DeviceCUDA}, nil
		}
		e.mu.Lock()
		first := !e.warned
		e.warned = true
		e.mu.Unlock()
		if first {
			e.log.Warn("runtime: device auto: CUDA unavailable, falling back to CPU", "reason", err.Error())
		}
		return CPU, nil
	}
	return Device{}, fmt.Errorf("%w: kind %d", ErrBadDevice, int(d.Kind))
}

// probeCUDA checks, once per ordinal, that the CUDA execution provider can
// be appended to a session for device id.
func (e *Env) probeCUDA(id int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err, ok := e.cuda[id]; ok {
		return err
	}
	err := e.tryCUDA(id)
	e.cuda[id] = err
	return err
}

func (e *Env) tryCUDA(id int) (err error) {
	if !slices.Contains(e.providers, cudaProvider) {
		return fmt.Errorf("%w: this ONNX Runtime build (%s) has no %s (providers: %s)",
			ErrCUDAUnavailable, e.version, cudaProvider, strings.Join(e.providers, ", "))
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("%w: session options: %v", ErrCUDAUnavailable, err)
	}
	defer func() {
		if derr := so.Destroy(); derr != nil && err == nil {
			err = fmt.Errorf("runtime: release probe options: %w", derr)
		}
	}()
	return appendCUDA(so, id)
}

// appendCUDA adds the CUDA execution provider for device id to so.
func appendCUDA(so *ort.SessionOptions, id int) (err error) {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCUDAUnavailable, err)
	}
	defer func() {
		if derr := co.Destroy(); derr != nil && err == nil {
			err = fmt.Errorf("runtime: release CUDA options: %w", derr)
		}
	}()
	if err := co.Update(map[string]string{"device_id": strconv.Itoa(id)}); err != nil {
		return fmt.Errorf("%w: cuda:%d: %v", ErrCUDAUnavailable, id, err)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("%w: cuda:%d: %v", ErrCUDAUnavailable, id, err)
	}
	return nil
}
