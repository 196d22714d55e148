// Package runtime runs ONNX models through ONNX Runtime (ORT) via
// github.com/yalue/onnxruntime_go: it finds and loads the ORT shared
// library, chooses execution providers, opens sessions with named inputs and
// outputs, checks them against what the caller expects, and moves tensors in
// and out without extra copies. The generation engine (prefill, KV-cache
// decode, sampling) is built on this API.
//
// # Library and environment
//
// Open locates libonnxruntime (Locator: $MEDGR2_ORT_LIB, then
// third_party/ort/ above the working directory and the executable, then
// LD_LIBRARY_PATH and the system library folders). A missing library is a
// *LibraryError wrapping ErrLibraryNotFound whose message says to run
// `make ort` (scripts/fetch-ort.sh). ORT's environment is process-global, so
// the first Open initialises it under a mutex and every later Open shares
// it; it stays loaded until the process exits. Env.Version and
// Env.Providers report what the library offers.
//
// # Devices
//
// ParseDevice reads "auto", "cpu", "cuda" or "cuda:N". auto uses CUDA when
// the CUDA execution provider can be appended and falls back to CPU with one
// warning line on the Env's logger saying why; an explicit cuda device that
// cannot be used is an error wrapping ErrCUDAUnavailable. The npm build of
// ORT used by `make ort` lists CUDA among its providers but ships no CUDA
// plugin, so on it auto always means CPU.
//
// # Sessions
//
// Env.NewSession (or NewSessionFromBytes) reads the model's declared inputs
// and outputs straight from the protobuf (mapped, weights untouched), so
// Session.Inputs and Outputs give names, element types, shapes (-1 for
// symbolic dims) and dim names. Session.Check, or SessionOptions.Expect at
// open time, compares the caller's expectations before any run; every
// mismatch is an *IOError naming the input with the expected and actual
// shape. Missing, empty, truncated or non-ONNX files are *ModelError values
// naming the file.
//
// Session.Run takes every runtime input by name and returns the requested
// outputs; Session.RunInto also accepts caller-owned output buffers (written
// in place) so hot loops avoid the copy onnxruntime_go makes of outputs it
// allocates. Both are safe for concurrent use. ctx is checked before a run,
// and cancelling it during a run raises ORT's terminate flag, which stops
// the run at the next operator boundary (a single long kernel is not
// interrupted).
//
// # Tensors
//
// NewTensor[T] wraps a Go slice without copying; Data[T] returns the
// tensor's own memory. float16 and bfloat16 use the Half and BHalf element
// types. Outputs of one run can be fed as inputs of the next unchanged,
// which is how a decode loop carries present.* into past_key_values.*.
// Close is nil-safe and idempotent; CloseAll joins errors.
//
// Known limits of onnxruntime_go v1.27 worked around here: outputs ORT
// allocates are copied once into Go memory (use RunInto to avoid it);
// float16/bfloat16 outputs with symbolic dims need a RunInto buffer; scalar
// outputs are pre-allocated from the declared shape; float16 scalars are
// not supported.
//
// # Usage
//
//	env, err := runtime.Open(ctx, runtime.Options{Logger: slog.Default()})
//	if err != nil {
//		return err // *LibraryError: run `make ort`
//	}
//	defer env.Close()
//	dev, err := runtime.ParseDevice(*deviceFlag)
//	sess, err := env.NewSession(ctx, "embed_tokens.onnx", runtime.SessionOptions{
//		Device: dev,
//		Expect: []runtime.IOInfo{{Name: "input_ids", DType: runtime.Int64, Shape: []int64{-1, -1}}},
//	})
//	defer sess.Close()
//	ids, _ := runtime.NewTensor([]int64{1, 4}, []int64{1, 2, 3, 4})
//	defer ids.Close()
//	outs, err := sess.Run(ctx, []runtime.NamedTensor{{Name: "input_ids", Tensor: ids}}, []string{"inputs_embeds"})
//	defer runtime.CloseAll(outs...)
//	embeds, err := runtime.Data[float32](outs[0])
package runtime
