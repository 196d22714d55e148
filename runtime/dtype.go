package runtime

import (
	"fmt"
	"math"

	ort "github.com/yalue/onnxruntime_go"
)

// DType is a tensor element type. Its values are the ONNX
// TensorProto.DataType numbers, so they convert directly to and from
// onnx.proto and ONNX Runtime.
type DType int32

// Element types supported by Tensor. Undefined (0) marks an unknown type.
const (
	Undefined DType = 0
	Float32   DType = 1
	Uint8     DType = 2
	Int8      DType = 3
	Uint16    DType = 4
	Int16     DType = 5
	Int32     DType = 6
	Int64     DType = 7
	String    DType = 8 // declared by some models; Tensor cannot hold it
	Bool      DType = 9
	Float16   DType = 10
	Float64   DType = 11
	Uint32    DType = 12
	Uint64    DType = 13
	BFloat16  DType = 16
)

var dtypeNames = map[DType]string{
	Undefined: "undefined", Float32: "float32", Uint8: "uint8", Int8: "int8",
	Uint16: "uint16", Int16: "int16", Int32: "int32", Int64: "int64",
	String: "string", Bool: "bool", Float16: "float16", Float64: "float64",
	Uint32: "uint32", Uint64: "uint64", BFloat16: "bfloat16",
}

// String returns the lower-case name of the type ("float32", "int64", …).
func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Size returns the size of one element in bytes, or 0 for String and
// unknown types.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Int64, Float64, Uint64:
		return 8
	}
	return 0
}

// Half is an IEEE 754 half-precision float stored as its bit pattern. A
// Tensor of Half has DType Float16 (plain uint16 gives DType Uint16).
type Half uint16

// BHalf is a bfloat16 stored as its bit pattern (DType BFloat16).
type BHalf uint16

// Element lists the Go types a Tensor can hold.
type Element interface {
	float32 | float64 | int8 | uint8 | int16 | uint16 | int32 | uint32 |
		int64 | uint64 | bool | Half | BHalf
}

// dtypeOf returns the DType of Go element type T. Half and BHalf are told
// apart from uint16 by their named types.
func dtypeOf[T Element]() DType {
	var z T
	switch any(z).(type) {
	case Half:
		return Float16
	case BHalf:
		return BFloat16
	}
	return DType(ort.GetTensorElementDataType[T]())
}

// HalfFromFloat32 rounds f to the nearest half-precision value (ties to
// even); values beyond the half range become ±Inf.
func HalfFromFloat32(f float32) Half {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b >> 23) & 0xff)
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return Half(sign | 0x7e00)
		}
		return Half(sign | 0x7c00)
	case exp-127+15 >= 0x1f: // overflow
		return Half(sign | 0x7c00)
	case exp-127+15 <= 0: // subnormal half or zero
		if exp-127+15 < -10 {
			return Half(sign)
		}
		mant |= 0x800000
		shift := uint32(14 - (exp - 127 + 15))
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return Half(sign | uint16(h))
	}
	h := uint32(exp-127+15)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which is the correct rounding
	}
	return Half(sign | uint16(h))
}

// Float32 returns h as a float32 (exact).
func (h Half) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp-15+127)<<23 | mant<<13)
}
