package runtime

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/graph/onnxpb"
)

func TestRunAddSymbolicBatch(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSession(context.Background(), writeModel(t, "add.onnx", addModel(t)), SessionOptions{Device: CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := s.Inputs()
	if len(in) != 2 || in[0].Name != "X" || in[0].DType != Float32 || !slices.Equal(in[0].Shape, []int64{-1, 3}) ||
		!slices.Equal(in[0].DimNames, []string{"batch", ""}) {
		t.Fatalf("inputs = %+v", in)
	}
	if out := s.Outputs(); len(out) != 1 || out[0].String() != "Z: float32[-1 3]" {
		t.Fatalf("outputs = %v", out)
	}
	for _, batch := range []int{1, 2, 5} {
		x := make([]float32, batch*3)
		y := make([]float32, batch*3)
		for i := range x {
			x[i], y[i] = float32(i), float32(10*i)
		}
		outs, err := s.Run(context.Background(), []NamedTensor{
			{"Y", mustTensor(t, []int64{int64(batch), 3}, y)},
			{"X", mustTensor(t, []int64{int64(batch), 3}, x)},
		}, []string{"Z"})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		z := mustData[float32](t, outs[0])
		if !slices.Equal(outs[0].Shape(), []int64{int64(batch), 3}) {
			t.Fatalf("batch %d: shape %v", batch, outs[0].Shape())
		}
		for i := range z {
			if z[i] != float32(11*i) {
				t.Fatalf("batch %d: z[%d] = %v, want %v", batch, i, z[i], 11*i)
			}
		}
		if err := CloseAll(outs...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunMatMulFromBytes(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "matmul", matmulModel(t), SessionOptions{Device: CPU, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Inputs()) != 1 {
		t.Fatalf("initializer W listed as input: %v", s.Inputs())
	}
	a := mustTensor(t, []int64{2, 3}, []float32{1, 0, 0, 0, 1, 1})
	outs, err := s.Run(context.Background(), []NamedTensor{{"A", a}}, []string{"C"})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(outs...)
	// Row 0 = W[0] = 0..3; row 1 = W[1]+W[2] = 4..7 + 8..11.
	want := []float32{0, 1, 2, 3, 12, 14, 16, 18}
	if got := mustData[float32](t, outs[0]); !slices.Equal(got, want) {
		t.Fatalf("C = %v, want %v", got, want)
	}
}

func TestRunInputErrors(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "matmul", matmulModel(t), SessionOptions{Device: CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	good := mustTensor(t, []int64{2, 3}, make([]float32, 6))
	closed, _ := NewTensor([]int64{2, 3}, make([]float32, 6))
	closed.Close()
	tests := []struct {
		name     string
		inputs   []NamedTensor
		outputs  []string
		want     []string // substrings of the error
		sentinel error
	}{
		{"wrong shape", []NamedTensor{{"A", mustTensor(t, []int64{3, 3}, make([]float32, 9))}}, []string{"C"},
			[]string{`"A"`, "[3 3]", "[2 3]"}, ErrIOMismatch},
		{"wrong rank", []NamedTensor{{"A", mustTensor(t, []int64{6}, make([]float32, 6))}}, []string{"C"},
			[]string{`"A"`, "[6]"}, ErrIOMismatch},
		{"wrong dtype", []NamedTensor{{"A", mustTensor(t, []int64{2, 3}, make([]int64, 6))}}, []string{"C"},
			[]string{`"A"`, "int64", "float32"}, ErrIOMismatch},
		{"missing input", nil, []string{"C"}, []string{`"A"`, "missing"}, ErrIOMismatch},
		{"unknown input", []NamedTensor{{"A", good}, {"B", good}}, []string{"C"}, []string{`"B"`}, ErrIOMismatch},
		{"duplicate input", []NamedTensor{{"A", good}, {"A", good}}, []string{"C"}, []string{"twice"}, ErrIOMismatch},
		{"closed tensor", []NamedTensor{{"A", closed}}, []string{"C"}, []string{`"A"`}, ErrClosed},
		{"nil tensor", []NamedTensor{{"A", nil}}, []string{"C"}, []string{`"A"`}, ErrClosed},
		{"unknown output", []NamedTensor{{"A", good}}, []string{"D"}, []string{`"D"`}, ErrIOMismatch},
		{"duplicate output", []NamedTensor{{"A", good}}, []string{"C", "C"}, []string{"twice"}, ErrIOMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, err := s.Run(context.Background(), tt.inputs, tt.outputs)
			if err == nil {
				CloseAll(outs...)
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tt.sentinel)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "add", addModel(t), SessionOptions{Device: CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name   string
		expect []IOInfo
		want   []string // empty: no error
	}{
		{"exact", []IOInfo{{Name: "X", DType: Float32, Shape: []int64{-1, 3}}}, nil},
		{"fixed batch fits symbolic", []IOInfo{{Name: "X", DType: Float32, Shape: []int64{8, 3}}}, nil},
		{"output", []IOInfo{{Name: "Z", DType: Float32, Shape: []int64{-1, -1}}}, nil},
		{"any type any shape", []IOInfo{{Name: "Y"}}, nil},
		{"wrong dim", []IOInfo{{Name: "X", Shape: []int64{-1, 4}}}, []string{`"X"`, "[-1 4]", "[-1 3]"}},
		{"wrong rank", []IOInfo{{Name: "Y", Shape: []int64{3}}}, []string{`"Y"`, "[3]"}},
		{"wrong dtype", []IOInfo{{Name: "Z", DType: Float16}}, []string{`"Z"`, "float16", "float32"}},
		{"unknown", []IOInfo{{Name: "pixel_values"}}, []string{`"pixel_values"`, "inputs: X, Y"}},
		{"all reported", []IOInfo{{Name: "nope"}, {Name: "X", DType: Int64}}, []string{"nope", "int64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check(tt.expect)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrIOMismatch) {
				t.Fatalf("error %v does not wrap ErrIOMismatch", err)
			}
			var ioe *IOError
			if !errors.As(err, &ioe) {
				t.Fatalf("error %v is not an *IOError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// Expect in SessionOptions refuses the session before any run.
	_, err = env.NewSessionFromBytes(context.Background(), "add", addModel(t),
		SessionOptions{Device: CPU, Expect: []IOInfo{{Name: "X", Shape: []int64{-1, 5}}}})
	if !errors.Is(err, ErrIOMismatch) {
		t.Fatalf("Expect mismatch: err = %v", err)
	}
}

func TestModelFileErrors(t *testing.T) {
	env := openEnv(t)
	good := addModel(t)
	dir := t.TempDir()
	tests := []struct {
		name     string
		path     string
		sentinel error
	}{
		{"missing", dir + "/missing.onnx", ErrModelNotFound},
		{"directory", dir, ErrModelNotFound},
		{"empty", writeModel(t, "empty.onnx", nil), ErrInvalidModel},
		{"truncated", writeModel(t, "trunc.onnx", good[:len(good)-7]), ErrInvalidModel},
		{"truncated early", writeModel(t, "trunc2.onnx", good[:len(good)/3]), ErrInvalidModel},
		{"not onnx", writeModel(t, "junk.onnx", []byte("this is not a protobuf \xff\xff\xff")), ErrInvalidModel},
		{"json", writeModel(t, "model.onnx", []byte(`{"graph": {}}`)), ErrInvalidModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := env.NewSession(context.Background(), tt.path, SessionOptions{Device: CPU})
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tt.sentinel)
			}
			var me *ModelError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %v is not a *ModelError naming %s", err, tt.path)
			}
		})
	}
	if _, err := env.NewSessionFromBytes(context.Background(), "mem", good[:20], SessionOptions{Device: CPU}); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("truncated bytes: %v", err)
	}
}

func TestModelRejectedByORT(t *testing.T) {
	env := openEnv(t)
	// Parses as ONNX but uses an operator that does not exist.
	b := buildModel(t, []*onnxpb.NodeProto{node("NoSuchOp", []string{"X"}, []string{"Y"})},
		[]*onnxpb.ValueInfoProto{vi("X", f32, 2)}, []*onnxpb.ValueInfoProto{vi("Y", f32, 2)})
	_, err := env.NewSession(context.Background(), writeModel(t, "bad_op.onnx", b), SessionOptions{Device: CPU})
	if !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), "bad_op.onnx") {
		t.Fatalf("err = %v", err)
	}
}

func TestKVCacheLoopFeedsOutputsBack(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "cache", cacheModel(t),
		SessionOptions{Device: CPU, DisableMemPattern: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	past, err := NewEmptyTensor[float32]([]int64{1, 2, 0, 4}) // empty cache
	if err != nil {
		t.Fatal(err)
	}
	var want float32
	for step := 1; step <= 4; step++ {
		step1 := make([]float32, 8)
		for i := range step1 {
			step1[i] = float32(step)
		}
		want += float32(8 * step)
		nw := mustTensor(t, []int64{1, 2, 1, 4}, step1)
		outs := []NamedTensor{{Name: "present.0.key"}, {Name: "total"}, {Name: "shape"}}
		if err := s.RunInto(context.Background(), []NamedTensor{{"past_key_values.0.key", past}, {"new", nw}}, outs); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if err := past.Close(); err != nil {
			t.Fatal(err)
		}
		past = outs[0].Tensor // next step's input, no copy
		if got := mustData[int64](t, outs[2].Tensor); !slices.Equal(got, []int64{1, 2, int64(step), 4}) {
			t.Fatalf("step %d: shape output %v", step, got)
		}
		if !slices.Equal(past.Shape(), []int64{1, 2, int64(step), 4}) {
			t.Fatalf("step %d: present shape %v", step, past.Shape())
		}
		if got := mustData[float32](t, outs[1].Tensor); len(got) != 1 || got[0] != want || len(outs[1].Tensor.Shape()) != 0 {
			t.Fatalf("step %d: total %v (shape %v), want %v", step, got, outs[1].Tensor.Shape(), want)
		}
		CloseAll(outs[1].Tensor, outs[2].Tensor)
	}
	// The last position of each head holds the last step's value.
	if d := mustData[float32](t, past); d[3*4] != 4 || d[0] != 1 {
		t.Fatalf("cache contents %v", d)
	}
	past.Close()
}

func TestRunIntoReusesCallerBuffer(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "add", addModel(t), SessionOptions{Device: CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]float32, 6)
	z := mustTensor(t, []int64{2, 3}, buf)
	x := mustTensor(t, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	outs := []NamedTensor{{"Z", z}}
	if err := s.RunInto(context.Background(), []NamedTensor{{"X", x}, {"Y", x}}, outs); err != nil {
		t.Fatal(err)
	}
	if outs[0].Tensor != z || !slices.Equal(buf, []float32{2, 4, 6, 8, 10, 12}) {
		t.Fatalf("caller buffer not written in place: %v", buf)
	}
	// A wrong-shaped buffer is refused before the run.
	bad := []NamedTensor{{"Z", mustTensor(t, []int64{3, 2}, make([]float32, 6))}}
	if err := s.RunInto(context.Background(), []NamedTensor{{"X", x}, {"Y", x}}, bad); !errors.Is(err, ErrIOMismatch) {
		t.Fatalf("bad buffer: %v", err)
	}
}

func TestHalfAndBoolTensors(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "cast", castModel(t), SessionOptions{Device: CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vals := []float32{0, 1, -2.5, 65504, 0.000061035156}
	h := make([]Half, len(vals))
	for i, v := range vals {
		h[i] = HalfFromFloat32(v)
	}
	b := []bool{true, false, true, true, false}
	ht := mustTensor(t, []int64{5}, h)
	bt := mustTensor(t, []int64{5}, b)
	h2 := mustTensor(t, []int64{5}, make([]Half, 5))
	outs := []NamedTensor{{Name: "F"}, {Name: "H2", Tensor: h2}, {Name: "NB"}}
	if err := s.RunInto(context.Background(), []NamedTensor{{"H", ht}, {"B", bt}}, outs); err != nil {
		t.Fatal(err)
	}
	defer CloseAll(outs[0].Tensor, outs[2].Tensor)
	if got := mustData[float32](t, outs[0].Tensor); !slices.Equal(got, vals) {
		t.Errorf("F = %v, want %v", got, vals)
	}
	if got := mustData[Half](t, h2); !slices.Equal(got, h) {
		t.Errorf("H2 = %v, want %v", got, h)
	}
	if got := mustData[bool](t, outs[2].Tensor); !slices.Equal(got, []bool{false, true, false, false, true}) {
		t.Errorf("NB = %v", got)
	}
	if _, err := Data[uint16](h2); !errors.Is(err, ErrBadTensor) {
		t.Errorf("Data[uint16] of float16: %v", err)
	}
	// Without a buffer, a symbolic float16 output is refused before the run.
	_, err = s.Run(context.Background(), []NamedTensor{{"H", ht}, {"B", bt}}, []string{"F"})
	if !errors.Is(err, ErrIOMismatch) || !strings.Contains(err.Error(), `"H2"`) {
		t.Errorf("float16 output without buffer: %v", err)
	}
}

func TestSessionClosed(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "add", addModel(t), SessionOptions{Device: CPU})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var nilSession *Session
	if err := nilSession.Close(); err != nil {
		t.Fatal(err)
	}
	x := mustTensor(t, []int64{1, 3}, make([]float32, 3))
	if _, err := s.Run(context.Background(), []NamedTensor{{"X", x}, {"Y", x}}, []string{"Z"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}
	env2 := openEnv(t)
	env2.Close()
	if _, err := env2.NewSessionFromBytes(context.Background(), "add", addModel(t), SessionOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("session from closed env: %v", err)
	}
}

func TestBadSessionOptions(t *testing.T) {
	env := openEnv(t)
	tests := []SessionOptions{
		{Device: CPU, IntraOpThreads: -1},
		{Device: CPU, InterOpThreads: -2},
		{Device: CPU, GraphOptimization: 7},
		{Device: CPU, Config: map[string]string{"": "x"}},
	}
	for i, o := range tests {
		s, err := env.NewSessionFromBytes(context.Background(), "add", addModel(t), o)
		if !errors.Is(err, ErrBadOptions) {
			s.Close()
			t.Errorf("case %d: err = %v, want ErrBadOptions", i, err)
		}
	}
}
