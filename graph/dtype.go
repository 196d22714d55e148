package graph

import (
	"fmt"
	"strings"

	"github.com/medgr2/medgr2/graph/onnxpb"
)

// DType is the element type of a tensor value.
type DType int

// Element types the builder supports. The numeric values are ONNX's
// TensorProto.DataType codes.
const (
	Float32 DType = DType(onnxpb.TensorProto_FLOAT)
	Int32   DType = DType(onnxpb.TensorProto_INT32)
	Int64   DType = DType(onnxpb.TensorProto_INT64)
	Bool    DType = DType(onnxpb.TensorProto_BOOL)
	Float16 DType = DType(onnxpb.TensorProto_FLOAT16)
	Float64 DType = DType(onnxpb.TensorProto_DOUBLE)
)

// String returns the lower-case ONNX name of d ("float32", "int64", …).
func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	case Float16:
		return "float16"
	case Float64:
		return "float64"
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size returns the number of bytes of one element of d, or 0 for an
// unsupported type.
func (d DType) Size() int {
	switch d {
	case Float32, Int32:
		return 4
	case Int64, Float64:
		return 8
	case Bool:
		return 1
	case Float16:
		return 2
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == Float32 || d == Float16 || d == Float64 }

// Valid reports whether the builder supports d.
func (d DType) Valid() bool { return d.Size() > 0 }

// Dim is one dimension of a static shape: a fixed size, a named symbol
// (Param, e.g. "batch") whose size is only known at run time, or unknown
// (Size < 0 and Param empty).
type Dim struct {
	Size  int64  // the fixed size; -1 when the dimension is symbolic or unknown
	Param string // the symbol name when Size is -1; empty for an unknown dimension
}

// D returns a fixed dimension of size n.
func D(n int64) Dim { return Dim{Size: n} }

// Sym returns a symbolic dimension called name.
func Sym(name string) Dim { return Dim{Size: -1, Param: name} }

// Unknown is a dimension the builder could not infer.
var Unknown = Dim{Size: -1}

// Fixed reports whether d has a known size.
func (d Dim) Fixed() bool { return d.Size >= 0 }

// String returns the size, the symbol name, or "?".
func (d Dim) String() string {
	if d.Fixed() {
		return fmt.Sprint(d.Size)
	}
	if d.Param != "" {
		return d.Param
	}
	return "?"
}

// Shape is the static shape of a value; a scalar has rank 0.
type Shape []Dim

// Dims returns a fully fixed Shape from sizes.
func Dims(sizes ...int64) Shape {
	s := make(Shape, len(sizes))
	for i, n := range sizes {
		s[i] = D(n)
	}
	return s
}

// Rank returns the number of dimensions.
func (s Shape) Rank() int { return len(s) }

// Fixed reports whether every dimension has a known size.
func (s Shape) Fixed() bool {
	for _, d := range s {
		if !d.Fixed() {
			return false
		}
	}
	return true
}

// Sizes returns the dimension sizes, -1 for symbolic or unknown ones.
func (s Shape) Sizes() []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = d.Size
	}
	return out
}

// NumElements returns the product of the sizes, or -1 if any is not fixed.
func (s Shape) NumElements() int64 {
	n := int64(1)
	for _, d := range s {
		if !d.Fixed() {
			return -1
		}
		n *= d.Size
	}
	return n
}

// Clone returns a copy of s.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// String formats s as "[batch, seq, 128]".
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Equal reports whether s and t have the same rank and the same dims.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}
