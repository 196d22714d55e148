package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// runDoctor reports whether ONNX Runtime loads and which device --device
// resolves to. It fails (exit 1) with the loader's advice when ORT cannot
// be loaded, and with ErrCUDAUnavailable when an explicit cuda device cannot
// be used.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dev runtime.Device
	fs.Var(&dev, "device", "execution device: auto, cpu, cuda or cuda:N")
	model := fs.String("model", "", "also check this model bundle: manifest, files, ONNX signatures, sessions and one forward pass")
	var dtype models.DType
	fs.Var(&dtype, "dtype", "with --model: "+models.DTypeUsage)
	lib := fs.String("ort-lib", "", "ONNX Runtime library path (default: $MEDGR2_ORT_LIB, third_party/ort, system paths)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("doctor: unexpected arguments %q", fs.Args()))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env, err := runtime.Open(ctx, runtime.Options{LibraryPath: *lib, Logger: log})
	if err != nil {
		fmt.Fprintln(stdout, "onnxruntime: FAIL")
		return fmt.Errorf("doctor: %w", err)
	}
	defer env.Close()
	fmt.Fprintf(stdout, "onnxruntime library: %s\n", env.LibraryPath())
	fmt.Fprintf(stdout, "onnxruntime version: %s\n", env.Version())
	fmt.Fprintf(stdout, "providers (compiled in): %s\n", strings.Join(env.Providers(), ", "))
	got, err := env.ResolveDevice(ctx, dev)
	if err != nil {
		fmt.Fprintf(stdout, "device %s: FAIL\n", dev)
		return fmt.Errorf("doctor: %w", err)
	}
	fmt.Fprintf(stdout, "device %s: %s\n", dev, got)
	if *model == "" {
		return nil
	}
	return doctorBundle(ctx, env, got, *model, dtype, stdout)
}
