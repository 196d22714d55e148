package graph

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/medgr2/medgr2/internal/atomicfile"
)

// ExternalRef locates an initializer's raw little-endian bytes in a file
// beside the ONNX graph (ONNX external data: location, offset, length). The
// location is relative to the graph file's folder.
type ExternalRef struct {
	Location string // file name relative to the ONNX file's folder
	Offset   int64  // byte offset of the first element
	Length   int64  // byte length of the tensor
}

// WeightSpec names one tensor of a weights file.
type WeightSpec struct {
	Name  string
	DType DType
	Dims  []int64
}

// NamedTensor is a tensor with its weight name.
type NamedTensor struct {
	Name   string
	Tensor *Tensor
}

// WeightsLayout is the byte layout of a safetensors weights file: the
// header, and where each tensor's bytes start. The same specs (names,
// dtypes, shapes, order) always give the same layout, so a trainer can write
// new weights into a file with this layout and every ONNX graph whose
// external data points into it stays valid.
type WeightsLayout struct {
	Location string        // file name the refs use
	Header   []byte        // the 8-byte length prefix plus the padded JSON header
	Specs    []WeightSpec  // in file order
	Refs     []ExternalRef // Refs[i] locates Specs[i]
}

// Ref returns where the tensor called name lives.
func (l *WeightsLayout) Ref(name string) (ExternalRef, bool) {
	for i, s := range l.Specs {
		if s.Name == name {
			return l.Refs[i], true
		}
	}
	return ExternalRef{}, false
}

// Size returns the total file size in bytes.
func (l *WeightsLayout) Size() int64 {
	if len(l.Refs) == 0 {
		return int64(len(l.Header))
	}
	last := l.Refs[len(l.Refs)-1]
	return last.Offset + last.Length
}

var stDTypes = map[DType]string{Float32: "F32", Float16: "F16", Int64: "I64", Int32: "I32", Bool: "BOOL"}

type stEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int64  `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// PlanWeights computes the safetensors layout for specs, stored in order,
// contiguously (safetensors allows no holes), after a JSON header padded
// with spaces to a multiple of 8 bytes.
func PlanWeights(location string, specs []WeightSpec) (*WeightsLayout, error) {
	header := map[string]any{"__metadata__": map[string]string{"format": "pt", "producer": "medgr2"}}
	seen := map[string]bool{}
	var off int64
	rel := make([][2]int64, len(specs))
	for i, s := range specs {
		name, ok := stDTypes[s.DType]
		if !ok || s.Name == "" || s.Name == "__metadata__" || seen[s.Name] {
			return nil, fmt.Errorf("%w: weight %q (%v) cannot be stored", ErrInvalidArg, s.Name, s.DType)
		}
		seen[s.Name] = true
		n, err := numElements(s.Dims)
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", s.Name, err)
		}
		rel[i] = [2]int64{off, off + n*int64(s.DType.Size())}
		off = rel[i][1]
		header[s.Name] = stEntry{DType: name, Shape: append([]int64{}, s.Dims...), Offsets: rel[i]}
	}
	js, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("graph: safetensors header: %w", err)
	}
	for (8+len(js))%8 != 0 {
		js = append(js, ' ')
	}
	hdr := make([]byte, 8, 8+len(js))
	binary.LittleEndian.PutUint64(hdr, uint64(len(js)))
	hdr = append(hdr, js...)
	l := &WeightsLayout{Location: location, Header: hdr, Specs: append([]WeightSpec(nil), specs...)}
	for _, r := range rel {
		l.Refs = append(l.Refs, ExternalRef{Location: location, Offset: int64(len(hdr)) + r[0], Length: r[1] - r[0]})
	}
	return l, nil
}

// WriteWeights writes tensors as a safetensors file at path (atomically,
// through a temporary file) and returns its layout; the refs' location is
// the base name of path.
func WriteWeights(path string, tensors []NamedTensor) (*WeightsLayout, error) {
	specs := make([]WeightSpec, len(tensors))
	for i, t := range tensors {
		if t.Tensor == nil {
			return nil, fmt.Errorf("%w: weight %q has no tensor", ErrInvalidArg, t.Name)
		}
		if err := checkLen(t.Tensor.Dims, t.Tensor.Len()); err != nil {
			return nil, fmt.Errorf("weight %q: %w", t.Name, err)
		}
		specs[i] = WeightSpec{Name: t.Name, DType: t.Tensor.DType, Dims: t.Tensor.Dims}
	}
	layout, err := PlanWeights(filepath.Base(path), specs)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(layout.Size()))
	buf.Write(layout.Header)
	for _, t := range tensors {
		buf.Write(t.Tensor.Bytes())
	}
	if err := atomicfile.Write(path, buf.Bytes()); err != nil {
		return nil, err
	}
	return layout, nil
}

// ReadWeights reads a safetensors file. It returns the tensors by name and
// the layout (tensor order is by data offset). A malformed file gives an
// error wrapping ErrFormat.
func ReadWeights(path string) (map[string]*Tensor, *WeightsLayout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("graph: read weights: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("graph: read weights %s: %w", path, err)
	}
	ts, layout, err := parseSafetensors(filepath.Base(path), data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, layout, nil
}

type stParsed struct {
	name string
	e    stEntry
}

func parseSafetensors(location string, data []byte) (map[string]*Tensor, *WeightsLayout, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("%w: safetensors file of %d bytes", ErrFormat, len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("%w: safetensors header length %d exceeds file size %d", ErrFormat, n, len(data))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &raw); err != nil {
		return nil, nil, fmt.Errorf("%w: safetensors header: %v", ErrFormat, err)
	}
	start := int64(8 + n)
	var entries []stParsed
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("%w: safetensors entry %q: %v", ErrFormat, name, err)
		}
		entries = append(entries, stParsed{name, e})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].e.Offsets[0] < entries[j].e.Offsets[0] })
	ts := map[string]*Tensor{}
	layout := &WeightsLayout{Location: location, Header: append([]byte(nil), data[:start]...)}
	for _, p := range entries {
		t, ref, err := decodeEntry(p, data, start)
		if err != nil {
			return nil, nil, err
		}
		ref.Location = location
		ts[p.name] = t
		layout.Specs = append(layout.Specs, WeightSpec{Name: p.name, DType: t.DType, Dims: t.Dims})
		layout.Refs = append(layout.Refs, ref)
	}
	return ts, layout, nil
}

func decodeEntry(p stParsed, data []byte, start int64) (*Tensor, ExternalRef, error) {
	var dt DType = -1
	for k, v := range stDTypes {
		if v == p.e.DType {
			dt = k
		}
	}
	lo, hi := p.e.Offsets[0], p.e.Offsets[1]
	if dt < 0 || dt == Float16 {
		return nil, ExternalRef{}, fmt.Errorf("%w: tensor %q has unsupported dtype %q", ErrFormat, p.name, p.e.DType)
	}
	if lo < 0 || hi < lo || start+hi > int64(len(data)) {
		return nil, ExternalRef{}, fmt.Errorf("%w: tensor %q offsets [%d, %d) outside the %d data bytes", ErrFormat, p.name, lo, hi, int64(len(data))-start)
	}
	t, err := TensorFromBytes(dt, p.e.Shape, data[start+lo:start+hi])
	if err != nil {
		return nil, ExternalRef{}, fmt.Errorf("%w: tensor %q: %v", ErrFormat, p.name, err)
	}
	return t, ExternalRef{Offset: start + lo, Length: hi - lo}, nil
}
