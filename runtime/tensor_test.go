package runtime

import (
	"errors"
	"math"
	"slices"
	"testing"
	"unsafe"
)

func TestNewTensorErrors(t *testing.T) {
	openEnv(t)
	tests := []struct {
		name  string
		shape []int64
		n     int
	}{
		{"too few", []int64{2, 3}, 5},
		{"too many", []int64{2, 3}, 7},
		{"negative dim", []int64{-1, 3}, 3},
		{"scalar needs one", []int64{}, 2},
		{"overflow", []int64{1 << 40, 1 << 40}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := NewTensor(tt.shape, make([]float32, tt.n))
			if !errors.Is(err, ErrBadTensor) {
				ts.Close()
				t.Fatalf("err = %v, want ErrBadTensor", err)
			}
		})
	}
	if _, err := NewEmptyTensor[int64]([]int64{3, -2}); !errors.Is(err, ErrBadTensor) {
		t.Errorf("NewEmptyTensor negative: %v", err)
	}
	if _, err := NewTensor([]int64{}, []Half{1}); !errors.Is(err, ErrBadTensor) {
		t.Errorf("float16 scalar: %v", err)
	}
}

func TestTensorSharesMemory(t *testing.T) {
	openEnv(t)
	data := []float32{1, 2, 3, 4, 5, 6}
	ts := mustTensor(t, []int64{3, 2}, data)
	got := mustData[float32](t, ts)
	if unsafe.SliceData(got) != unsafe.SliceData(data) {
		t.Fatal("NewTensor copied the data")
	}
	h := []Half{1, 2, 3}
	th := mustTensor(t, []int64{3}, h)
	if gh := mustData[Half](t, th); unsafe.SliceData(gh) != unsafe.SliceData(h) || th.DType() != Float16 {
		t.Fatal("Half tensor copied the data or lost its type")
	}
	if ts.DType() != Float32 || ts.Len() != 6 || !slices.Equal(ts.Shape(), []int64{3, 2}) {
		t.Fatalf("dtype %v len %d shape %v", ts.DType(), ts.Len(), ts.Shape())
	}
	if _, err := Data[int64](ts); !errors.Is(err, ErrBadTensor) {
		t.Fatalf("wrong type: %v", err)
	}
	if info := ts.Info(); info.String() != ": float32[3 2]" {
		t.Fatalf("info %q", info)
	}
}

func TestTensorKinds(t *testing.T) {
	openEnv(t)
	tests := []struct {
		name  string
		make  func() (*Tensor, error)
		dtype DType
		shape []int64
	}{
		{"scalar int64", func() (*Tensor, error) { return NewTensor([]int64{}, []int64{7}) }, Int64, []int64{}},
		{"empty cache", func() (*Tensor, error) { return NewEmptyTensor[float32]([]int64{1, 2, 0, 4}) }, Float32, []int64{1, 2, 0, 4}},
		{"empty half", func() (*Tensor, error) { return NewEmptyTensor[Half]([]int64{0, 3}) }, Float16, []int64{0, 3}},
		{"bfloat16", func() (*Tensor, error) { return NewEmptyTensor[BHalf]([]int64{2}) }, BFloat16, []int64{2}},
		{"bool", func() (*Tensor, error) { return NewTensor([]int64{2}, []bool{true, false}) }, Bool, []int64{2}},
		{"uint16 stays uint16", func() (*Tensor, error) { return NewEmptyTensor[uint16]([]int64{2}) }, Uint16, []int64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := tt.make()
			if err != nil {
				t.Fatal(err)
			}
			defer ts.Close()
			if ts.DType() != tt.dtype || !slices.Equal(ts.Shape(), tt.shape) {
				t.Fatalf("got %v %v, want %v %v", ts.DType(), ts.Shape(), tt.dtype, tt.shape)
			}
		})
	}
	s := mustTensor(t, []int64{}, []int64{7})
	if d := mustData[int64](t, s); !slices.Equal(d, []int64{7}) {
		t.Fatalf("scalar data %v", d)
	}
}

func TestTensorCloseNilSafe(t *testing.T) {
	openEnv(t)
	var nilT *Tensor
	if err := nilT.Close(); err != nil {
		t.Fatal(err)
	}
	ts, err := NewTensor([]int64{1}, []float32{1})
	if err != nil {
		t.Fatal(err)
	}
	if err := CloseAll(ts, nil, ts); err != nil {
		t.Fatalf("double close: %v", err)
	}
	if _, err := Data[float32](ts); !errors.Is(err, ErrClosed) {
		t.Fatalf("data after close: %v", err)
	}
}

func TestHalfConversion(t *testing.T) {
	tests := []struct {
		in   float32
		bits Half
	}{
		{0, 0x0000}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {0.00006103515625, 0x0400}, // smallest normal
		{5.960464477539063e-08, 0x0001}, {1e-9, 0x0000}, {1.0009765625, 0x3c01},
		{1.00048828125, 0x3c00},           // tie rounds to even
		{2.98023223876953125e-08, 0x0000}, // half of the smallest subnormal: tie to even (0)
	}
	for _, tt := range tests {
		if got := HalfFromFloat32(tt.in); got != tt.bits {
			t.Errorf("HalfFromFloat32(%g) = %#04x, want %#04x", tt.in, got, tt.bits)
		}
	}
	for _, h := range []Half{0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xc000, 0x8001} {
		if back := HalfFromFloat32(h.Float32()); back != h {
			t.Errorf("round trip %#04x → %g → %#04x", h, h.Float32(), back)
		}
	}
	if nan := HalfFromFloat32(float32(math.NaN())); !math.IsNaN(float64(nan.Float32())) {
		t.Errorf("NaN → %#04x", nan)
	}
}
