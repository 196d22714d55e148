package graph

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Tensor is a dense host tensor used for initializers and constants. Exactly
// one of the data slices matches DType; the others are nil.
type Tensor struct {
	DType DType   // element type
	Dims  []int64 // shape; empty for a scalar
	F32   []float32
	F64   []float64
	I64   []int64
	I32   []int32
	Bool  []bool
}

// numElements returns the product of dims (1 for a scalar).
func numElements(dims []int64) (int64, error) {
	n := int64(1)
	for i, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d at axis %d", ErrInvalidArg, d, i)
		}
		n *= d
	}
	return n, nil
}

// NewFloat32 returns a float32 tensor of shape dims holding data (not copied).
// It fails with ErrInvalidArg when len(data) does not match dims.
func NewFloat32(dims []int64, data []float32) (*Tensor, error) {
	if err := checkLen(dims, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{DType: Float32, Dims: append([]int64(nil), dims...), F32: data}, nil
}

// NewFloat64 returns a float64 tensor of shape dims holding data (not copied).
func NewFloat64(dims []int64, data []float64) (*Tensor, error) {
	if err := checkLen(dims, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{DType: Float64, Dims: append([]int64(nil), dims...), F64: data}, nil
}

// NewInt64 returns an int64 tensor of shape dims holding data (not copied).
func NewInt64(dims []int64, data []int64) (*Tensor, error) {
	if err := checkLen(dims, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{DType: Int64, Dims: append([]int64(nil), dims...), I64: data}, nil
}

// NewInt32 returns an int32 tensor of shape dims holding data (not copied).
func NewInt32(dims []int64, data []int32) (*Tensor, error) {
	if err := checkLen(dims, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{DType: Int32, Dims: append([]int64(nil), dims...), I32: data}, nil
}

// NewBool returns a bool tensor of shape dims holding data (not copied).
func NewBool(dims []int64, data []bool) (*Tensor, error) {
	if err := checkLen(dims, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{DType: Bool, Dims: append([]int64(nil), dims...), Bool: data}, nil
}

func checkLen(dims []int64, n int) error {
	want, err := numElements(dims)
	if err != nil {
		return err
	}
	if want != int64(n) {
		return fmt.Errorf("%w: shape %v needs %d elements, got %d", ErrInvalidArg, dims, want, n)
	}
	return nil
}

// Len returns the number of elements.
func (t *Tensor) Len() int {
	switch t.DType {
	case Float32:
		return len(t.F32)
	case Float64:
		return len(t.F64)
	case Int64:
		return len(t.I64)
	case Int32:
		return len(t.I32)
	case Bool:
		return len(t.Bool)
	}
	return 0
}

// Shape returns the tensor's dims as a fixed Shape.
func (t *Tensor) Shape() Shape { return Dims(t.Dims...) }

// Bytes returns the elements in ONNX raw_data layout (little-endian, row-major).
func (t *Tensor) Bytes() []byte {
	size := t.DType.Size()
	out := make([]byte, t.Len()*size)
	switch t.DType {
	case Float32:
		for i, v := range t.F32 {
			binary.LittleEndian.PutUint32(out[i*4:], math.Float32bits(v))
		}
	case Float64:
		for i, v := range t.F64 {
			binary.LittleEndian.PutUint64(out[i*8:], math.Float64bits(v))
		}
	case Int64:
		for i, v := range t.I64 {
			binary.LittleEndian.PutUint64(out[i*8:], uint64(v))
		}
	case Int32:
		for i, v := range t.I32 {
			binary.LittleEndian.PutUint32(out[i*4:], uint32(v))
		}
	case Bool:
		for i, v := range t.Bool {
			if v {
				out[i] = 1
			}
		}
	}
	return out
}

// TensorFromBytes decodes raw little-endian data of the given type and shape.
// It fails with ErrInvalidArg when the byte length does not match or the type
// is unsupported.
func TensorFromBytes(dtype DType, dims []int64, raw []byte) (*Tensor, error) {
	n, err := numElements(dims)
	if err != nil {
		return nil, err
	}
	if dtype == Float16 || !dtype.Valid() {
		return nil, fmt.Errorf("%w: cannot decode %v tensors", ErrUnsupported, dtype)
	}
	if int64(len(raw)) != n*int64(dtype.Size()) {
		return nil, fmt.Errorf("%w: %v%v needs %d bytes, got %d", ErrInvalidArg, dtype, dims, n*int64(dtype.Size()), len(raw))
	}
	t := &Tensor{DType: dtype, Dims: append([]int64(nil), dims...)}
	switch dtype {
	case Float32:
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:]))
		}
	case Float64:
		t.F64 = make([]float64, n)
		for i := range t.F64 {
			t.F64[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[i*8:]))
		}
	case Int64:
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(binary.LittleEndian.Uint64(raw[i*8:]))
		}
	case Int32:
		t.I32 = make([]int32, n)
		for i := range t.I32 {
			t.I32[i] = int32(binary.LittleEndian.Uint32(raw[i*4:]))
		}
	case Bool:
		t.Bool = make([]bool, n)
		for i := range t.Bool {
			t.Bool[i] = raw[i] != 0
		}
	}
	return t, nil
}
