package models

import (
	"github.com/medgr2/medgr2/runtime"
)

// floatBuf is a host buffer of activations in a graph's float dtype:
// float32 or float16 (the fp16 and q4f16 variants), so inputs_embeds and
// the KV cache are fed and read back in the dtype the graph declares,
// without a float32 round trip between steps.
type floatBuf struct {
	half bool
	f32  []float32
	f16  []runtime.Half
}

// newFloatBuf returns a zeroed buffer of n elements with capacity c.
func newFloatBuf(half bool, n, c int) floatBuf {
	if half {
		return floatBuf{half: true, f16: make([]runtime.Half, n, max(n, c))}
	}
	return floatBuf{f32: make([]float32, n, max(n, c))}
}

// len returns the number of elements.
func (b floatBuf) len() int {
	if b.half {
		return len(b.f16)
	}
	return len(b.f32)
}

// resized returns b with length n, reallocating (capacity n·3/2, contents
// dropped) when its capacity is smaller.
func (b floatBuf) resized(n int) floatBuf {
	if b.half {
		if cap(b.f16) < n {
			b.f16 = make([]runtime.Half, 0, n+n/2)
		}
		b.f16 = b.f16[:n]
		return b
	}
	if cap(b.f32) < n {
		b.f32 = make([]float32, 0, n+n/2)
	}
	b.f32 = b.f32[:n]
	return b
}

// tensor wraps the buffer (not copied) as a tensor of shape.
func (b floatBuf) tensor(shape []int64) (*runtime.Tensor, error) {
	if b.half {
		return runtime.NewTensor(shape, b.f16)
	}
	return runtime.NewTensor(shape, b.f32)
}

// set writes src (float32) at offset off, rounding to float16 when b is.
func (b floatBuf) set(off int, src []float32) {
	if !b.half {
		copy(b.f32[off:], src)
		return
	}
	for i, v := range src {
		b.f16[off+i] = runtime.HalfFromFloat32(v)
	}
}

// read widens elements [off, off+len(dst)) into dst.
func (b floatBuf) read(dst []float32, off int) {
	if !b.half {
		copy(dst, b.f32[off:])
		return
	}
	for i := range dst {
		dst[i] = b.f16[off+i].Float32()
	}
}
