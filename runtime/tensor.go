package runtime

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// Tensor owns one ONNX Runtime tensor value whose data lives in Go memory.
// Tensors made by NewTensor share the caller's slice (no copy); tensors
// returned by Session.Run hold their own slice. A Tensor returned by one run
// can be passed as an input of the next without copying (the KV-cache decode
// loop). Close releases the ORT value; it is nil-safe and idempotent. A
// Tensor is not safe for concurrent mutation, but any number of concurrent
// runs may read it.
type Tensor struct {
	v     ort.Value
	dtype DType
	shape []int64
	n     int // element count
}

// NamedTensor pairs a tensor with the model input or output it binds to.
type NamedTensor struct {
	Name   string
	Tensor *Tensor
}

// NewTensor wraps data as a tensor of the given shape without copying: the
// tensor reads and writes data directly, so data must not be resized while
// the tensor is in use. len(data) must equal the product of shape; dims must
// be non-negative (0 is allowed, e.g. an empty KV cache). An empty shape is a
// scalar and needs len(data) == 1; scalars are the one case that copies.
// Use Half for float16 and BHalf for bfloat16 data.
func NewTensor[T Element](shape []int64, data []T) (*Tensor, error) {
	n, err := elementCount(shape)
	if err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, fmt.Errorf("%w: shape %v needs %d elements, got %d", ErrBadTensor, shape, n, len(data))
	}
	dt := dtypeOf[T]()
	var v ort.Value
	switch {
	case len(shape) == 0:
		v, err = newScalar(data[0])
	case dt == Float16 || dt == BFloat16:
		v, err = newHalfTensor(shape, data, dt)
	default:
		v, err = ort.NewTensor(ort.Shape(slices.Clone(shape)), data)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: create %s%v: %v", ErrBadTensor, dt, shape, err)
	}
	return &Tensor{v: v, dtype: dt, shape: slices.Clone(shape), n: n}, nil
}

// NewEmptyTensor allocates a zero-filled tensor of the given shape.
func NewEmptyTensor[T Element](shape []int64) (*Tensor, error) {
	n, err := elementCount(shape)
	if err != nil {
		return nil, err
	}
	return NewTensor(shape, make([]T, n))
}

func newScalar[T Element](x T) (ort.Value, error) {
	switch v := any(x).(type) {
	case Half, BHalf:
		return nil, errors.New("float16/bfloat16 scalars are not supported by onnxruntime_go")
	case float32:
		return ort.NewScalar(v)
	case float64:
		return ort.NewScalar(v)
	case int64:
		return ort.NewScalar(v)
	case int32:
		return ort.NewScalar(v)
	case bool:
		return ort.NewScalar(v)
	case uint8:
		return ort.NewScalar(v)
	case int8:
		return ort.NewScalar(v)
	case int16:
		return ort.NewScalar(v)
	case uint16:
		return ort.NewScalar(v)
	case uint32:
		return ort.NewScalar(v)
	case uint64:
		return ort.NewScalar(v)
	}
	return nil, fmt.Errorf("unsupported scalar type %T", x)
}

// newHalfTensor views 16-bit float data as bytes (no copy) in a custom-typed
// ORT tensor, since onnxruntime_go maps Go uint16 to ONNX uint16.
func newHalfTensor[T Element](shape []int64, data []T, dt DType) (ort.Value, error) {
	var raw []byte
	if len(data) == 0 {
		raw = make([]byte, 2) // onnxruntime_go wants ≥1 byte even for 0 elements
	} else {
		raw = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), len(data)*2)
	}
	return ort.NewCustomDataTensor(ort.Shape(slices.Clone(shape)), raw, ort.TensorElementDataType(dt))
}

// elementCount validates shape and returns the product of its dims.
func elementCount(shape []int64) (int, error) {
	n := uint64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: shape %v: dim %d is negative", ErrBadTensor, shape, i)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > 1<<48 {
			return 0, fmt.Errorf("%w: shape %v: too many elements", ErrBadTensor, shape)
		}
		n = lo
	}
	return int(n), nil
}

// wrapValue adopts an ORT value produced by a run.
func wrapValue(v ort.Value) (*Tensor, error) {
	if v.GetONNXType() != ort.ONNXTypeTensor {
		_ = v.Destroy()
		return nil, fmt.Errorf("%w: output is a %v, not a tensor", ErrBadTensor, v.GetONNXType())
	}
	shape := []int64(v.GetShape())
	if shape == nil {
		shape = []int64{}
	}
	n, err := elementCount(shape)
	if err != nil {
		_ = v.Destroy()
		return nil, err
	}
	return &Tensor{v: v, dtype: DType(v.DataType()), shape: slices.Clone(shape), n: n}, nil
}

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Shape returns a copy of the shape; empty for a scalar.
func (t *Tensor) Shape() []int64 { return slices.Clone(t.shape) }

// Len returns the number of elements.
func (t *Tensor) Len() int { return t.n }

// Info returns the tensor's name-less IOInfo (type and shape).
func (t *Tensor) Info() IOInfo { return IOInfo{DType: t.dtype, Shape: t.Shape()} }

// Close releases the ORT value. It is nil-safe and idempotent.
func (t *Tensor) Close() error {
	if t == nil || t.v == nil {
		return nil
	}
	err := t.v.Destroy()
	t.v = nil
	if err != nil {
		return fmt.Errorf("runtime: release tensor: %w", err)
	}
	return nil
}

// value returns the ORT value or ErrClosed.
func (t *Tensor) value() (ort.Value, error) {
	if t == nil || t.v == nil {
		return nil, fmt.Errorf("%w: tensor", ErrClosed)
	}
	return t.v, nil
}

// Data returns the tensor's elements in row-major order. For tensors the
// slice is the tensor's own memory (writes change the tensor, no copy); for
// scalars (empty shape) it is a one-element copy. T must match the tensor's
// DType (Half for Float16, BHalf for BFloat16), else the error wraps
// ErrBadTensor.
func Data[T Element](t *Tensor) ([]T, error) {
	v, err := t.value()
	if err != nil {
		return nil, err
	}
	if want := dtypeOf[T](); want != t.dtype {
		return nil, fmt.Errorf("%w: tensor holds %s, asked for %s", ErrBadTensor, t.dtype, want)
	}
	switch x := v.(type) {
	case *ort.Tensor[T]:
		return x.GetData(), nil
	case *ort.Scalar[T]:
		return []T{x.GetData()}, nil
	case *ort.CustomDataTensor:
		if t.n == 0 {
			return []T{}, nil
		}
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(x.GetData()))), t.n), nil
	}
	return nil, fmt.Errorf("%w: cannot view %T as []%s", ErrBadTensor, v, t.dtype)
}

// CloseAll closes every tensor and joins their errors; nil entries are
// skipped.
func CloseAll(ts ...*Tensor) error {
	var err error
	for _, t := range ts {
		err = errors.Join(err, t.Close())
	}
	return err
}
